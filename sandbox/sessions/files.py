"""Host-side management of sessions: list and prune them, move files in and out of workspaces.

Guest code controls everything inside a workspace, including symlinks that point at host
files, and may change it while these functions run. So every workspace access goes through
``sandbox.host.guest_tree``, which walks from directory descriptors without following links:
a symlink anywhere on a path is refused, never resolved, however the guest races the host.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from sandbox.core.errors import InvalidSessionIdError, SessionNotFoundError
from sandbox.host import guest_tree
from sandbox.sessions import changes
from sandbox.sessions.metadata import (
    load_metadata,
    pending_executions,
    remove_session_directory,
)
from sandbox.sessions.workspace import (
    session_dir,
    sessions_root,
    validate_session_id,
    workspace_of,
)


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
    content = data.encode() if isinstance(data, str) else data
    guest_tree.write_file(session_workspace(session_id, root=root), path, content)


def read_session_file(
    session_id: str, path: str | os.PathLike[str], *, root: Path | None = None
) -> bytes:
    """The bytes of a file the guest (or the host) left in the workspace."""
    return guest_tree.read_file(session_workspace(session_id, root=root), path)


def list_session_files(session_id: str, *, root: Path | None = None) -> list[str]:
    """Relative POSIX paths of the workspace's regular files, sorted.

    Symlinks are neither listed nor followed: their targets are not the session's files.
    """
    return sorted(changes.snapshot(session_workspace(session_id, root=root)))


def delete_session_file(
    session_id: str, path: str | os.PathLike[str], *, root: Path | None = None
) -> None:
    """Remove one file from the workspace; directories are left to delete_session_workspace()."""
    guest_tree.remove_file(session_workspace(session_id, root=root), path)


def delete_session_workspace(session_id: str, *, root: Path | None = None) -> None:
    """Remove the session entirely (workspace and metadata); its id can then be reused afresh."""
    remove_session_directory(session_workspace(session_id, root=root).parent)


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
            remove_session_directory(session_directory)
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
        executions=(metadata.executions if metadata else 0)
        + pending_executions(session_directory),
        workspace_path=str(workspace),
        size_bytes=changes.total_bytes(files),
        file_count=len(files),
    )
