"""Host-side management of sessions: list and prune them, move files in and out of workspaces.

Guest code controls everything inside a workspace, including symlinks that point at host
files. So every workspace path is checked component by component with lstat before it is
used, symlinks are refused rather than resolved, and nothing here follows one.
"""

from __future__ import annotations

import os
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePath

from pydantic import BaseModel, ConfigDict

from sandbox.core.errors import InvalidSessionIdError, SessionNotFoundError, WorkspacePathError
from sandbox.sessions import changes
from sandbox.sessions.metadata import load_metadata
from sandbox.sessions.workspace import (
    session_dir,
    sessions_root,
    validate_session_id,
    workspace_of,
)

_ALLOWED_PATHS = "a relative path inside the workspace, without '..', NUL bytes or symlinks"
# Refuses a symlink planted as the final component between our lstat check and the open.
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


class SessionInfo(BaseModel):
    """One session as seen from the host, for choosing what to reopen or delete."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    # None only for warm-pool spares and leftovers, which prune_sessions() sees and lists skip.
    runtime: str | None
    created_at: datetime | None
    # The last recorded execution, or the workspace mtime without metadata: what pruning uses.
    last_used_at: datetime
    executions: int
    workspace_path: str
    size_bytes: int
    file_count: int


class PruneReport(BaseModel):
    """What prune_sessions() removed, so a caller can log or show the space reclaimed."""

    model_config = ConfigDict(frozen=True)

    sessions_deleted: int
    bytes_freed: int


def list_sessions(*, root: Path | None = None) -> list[SessionInfo]:
    """Every session under the root, most recently used first.

    Entries whose name is not a session id are skipped (no API call could reach them by id), and
    so are directories without session.json: those are spares booted by the warm pool.
    """
    sessions = [info for info in _session_directories(_root(root)) if info.created_at is not None]
    return sorted(sessions, key=lambda info: (info.last_used_at, info.session_id), reverse=True)


def write_session_file(
    session_id: str,
    path: str | os.PathLike[str],
    data: bytes | str,
    *,
    root: Path | None = None,
) -> None:
    """Put a file where guest code will find it; a str is written as UTF-8.

    Only existing sessions accept files, so a mistyped id fails instead of creating a session.
    """
    target = _checked_path(session_workspace(session_id, root=root), path)
    target.parent.mkdir(parents=True, exist_ok=True)
    content = data.encode() if isinstance(data, str) else data
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NO_FOLLOW, 0o666)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(content)


def read_session_file(
    session_id: str, path: str | os.PathLike[str], *, root: Path | None = None
) -> bytes:
    """The bytes of a file the guest (or the host) left in the workspace."""
    target = _checked_path(session_workspace(session_id, root=root), path)
    with os.fdopen(os.open(target, os.O_RDONLY | _NO_FOLLOW), "rb") as stream:
        return stream.read()


def list_session_files(session_id: str, *, root: Path | None = None) -> list[str]:
    """Relative POSIX paths of the workspace's regular files, sorted.

    Symlinks are neither listed nor followed: their targets are not the session's files.
    """
    return sorted(changes.snapshot(session_workspace(session_id, root=root)))


def delete_session_file(
    session_id: str, path: str | os.PathLike[str], *, root: Path | None = None
) -> None:
    """Remove one file from the workspace; directories are left to delete_session_workspace()."""
    os.unlink(_checked_path(session_workspace(session_id, root=root), path))


def delete_session_workspace(session_id: str, *, root: Path | None = None) -> None:
    """Remove the session entirely (workspace and metadata); its id can then be reused afresh."""
    shutil.rmtree(session_workspace(session_id, root=root).parent)


def prune_sessions(max_age_days: float, *, root: Path | None = None) -> PruneReport:
    """Delete sessions unused for more than ``max_age_days``, to bound disk use over time.

    bytes_freed counts the regular files removed, metadata included, not symlink targets.
    """
    if not max_age_days >= 0:  # written this way round so that NaN is refused too
        raise ValueError(f"max_age_days must be a number >= 0, got {max_age_days!r}")
    base = _root(root)
    now = datetime.now(UTC)
    deleted = freed = 0
    for info in _session_directories(base):
        if (now - info.last_used_at) / timedelta(days=1) <= max_age_days:
            continue
        session_directory = base / info.session_id
        size = changes.total_bytes(changes.snapshot(session_directory))
        try:
            shutil.rmtree(session_directory)
        except FileNotFoundError:
            continue  # another process pruned or deleted it first
        deleted += 1
        freed += size
    return PruneReport(sessions_deleted=deleted, bytes_freed=freed)


def _session_directories(base: Path) -> list[SessionInfo]:
    """Every directory shaped like a session, warm-pool spares (no session.json) included."""
    try:
        entries = list(os.scandir(base))
    except FileNotFoundError:
        return []
    return [
        info
        for entry in entries
        if entry.is_dir(follow_symlinks=False)
        and _is_session_id(entry.name)
        and (info := _session_info(Path(entry.path))) is not None
    ]


def _root(root: Path | None) -> Path:
    return root if root is not None else sessions_root()


def _is_session_id(name: str) -> bool:
    """Whether ``name`` is exactly what validate_session_id() maps some id to."""
    try:
        return validate_session_id(name) == name
    except InvalidSessionIdError:
        return False


def session_workspace(session_id: str, *, root: Path | None = None) -> Path:
    """The workspace of an existing session; these functions never create one implicitly."""
    base = _root(root)
    workspace = workspace_of(session_dir(base, session_id))
    if not workspace.is_dir():
        raise SessionNotFoundError(
            f"no session {session_id!r} under {base}: use an id from list_sessions(), "
            "or create the session with create_sandbox(session_id=...)"
        )
    return workspace


def _checked_path(workspace: Path, path: str | os.PathLike[str]) -> Path:
    """``path`` inside ``workspace``, refused if it could name anything outside it.

    Symlinks are refused rather than resolved: the guest may have planted them, and resolving
    one would let the guest choose which host file the host reads, writes or deletes.
    """
    raw = os.fspath(path)
    relative = PurePath(raw)
    problem = _path_problem(raw, relative)
    if problem is not None:
        raise WorkspacePathError(f"workspace path {raw!r} {problem}; use {_ALLOWED_PATHS}")
    current = workspace
    for part in relative.parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except (FileNotFoundError, NotADirectoryError):
            break  # nothing exists below a missing component, so no symlink can either
        if stat.S_ISLNK(mode):
            crossed = current.relative_to(workspace).as_posix()
            raise WorkspacePathError(
                f"workspace path {raw!r} goes through the symlink {crossed!r}; use {_ALLOWED_PATHS}"
            )
    return workspace.joinpath(*relative.parts)


def _path_problem(raw: str, relative: PurePath) -> str | None:
    if "\0" in raw:
        return "contains a NUL byte"
    if relative.anchor:
        return "is absolute"
    if not relative.parts:
        return "is empty or names the workspace itself"
    if ".." in relative.parts:
        return "contains a '..' component"
    return None


def _session_info(session_directory: Path) -> SessionInfo | None:
    """None when the directory is not a session, or vanished while being listed."""
    workspace = workspace_of(session_directory)
    try:
        workspace_stat = os.lstat(workspace)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(workspace_stat.st_mode):
        return None
    files = changes.snapshot(workspace)
    metadata = load_metadata(session_directory)
    return SessionInfo(
        session_id=session_directory.name,
        runtime=metadata.runtime if metadata else None,
        created_at=metadata.created_at if metadata else None,
        last_used_at=(
            metadata.last_used_at
            if metadata
            else datetime.fromtimestamp(workspace_stat.st_mtime, UTC)
        ),
        executions=metadata.executions if metadata else 0,
        workspace_path=str(workspace),
        size_bytes=changes.total_bytes(files),
        file_count=len(files),
    )
