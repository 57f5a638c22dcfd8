"""Where session workspaces live on the host, and how session ids are checked.

Layout under the sessions root (``$LLM_WASM_SANDBOX_HOME`` or the user data dir)::

    <root>/<session id>/workspace/   mounted read-write in the guest (at /app by default)
    <root>/<session id>/session.json host-only metadata the guest cannot touch

A pooled interpreter gets its session directory when it boots (a preopened directory cannot be
swapped later); it becomes a session when handed out and its session.json is written, so a
directory without session.json is a pool spare, not a session. A spare's directory also holds
``spare.json`` naming the process that booted it, so that spares a dead process left behind
(after a crash or SIGKILL) are recognised and removed by the next process that uses the root.

A ``workspace_root`` given as in llm-wasm-sandbox 0.4 uses that version's layout instead::

    <workspace_root>/<session id>/                      the workspace itself
    <workspace_root>/.llm-wasm-sandbox/<session id>/    session.json and logs, host-only

The host-only directory's name is no valid session id, so no session can be created over it,
and it lies outside every workspace, so no guest can reach it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from sandbox.core.errors import InvalidSessionIdError, WorkspacePathError

HOME_ENV = "LLM_WASM_SANDBOX_HOME"
SPARE_MARKER = "spare.json"
LEGACY_HOST_DIR = ".llm-wasm-sandbox"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def sessions_root() -> Path:
    configured = os.environ.get(HOME_ENV)
    base = Path(configured) if configured else Path(platformdirs.user_data_dir("llm-wasm-sandbox"))
    return base / "sessions"


def validate_session_id(session_id: str) -> str:
    """Accept a UUID or a plain name; reject anything that could name another path."""
    try:
        return str(uuid.UUID(session_id))
    except (ValueError, AttributeError, TypeError):
        pass
    if not isinstance(session_id, str) or not _SAFE_ID.match(session_id) or ".." in session_id:
        raise InvalidSessionIdError(
            f"invalid session id {session_id!r}: use a UUID, or 1-128 letters, digits, '_', '-' "
            "or '.', starting with a letter or digit, with no '..' and no path separators"
        )
    return session_id


def validate_session_id_strict(session_id: str, *, allow_non_uuid: bool) -> str:
    """validate_session_id(), refusing plain names when ``allow_non_uuid`` is false (0.4.x)."""
    checked = validate_session_id(session_id)
    if not allow_non_uuid:
        try:
            uuid.UUID(checked)
        except ValueError:
            raise InvalidSessionIdError(
                f"invalid session id {session_id!r}: allow_non_uuid=False requires a UUID"
            ) from None
    return checked


def validate_workspace_root(workspace_root: str | os.PathLike[str]) -> Path:
    """An absolute root for 0.4-layout workspaces: no '..', no symlink anywhere on the path.

    A relative root is taken from the current directory, as in 0.4.x (whose default was
    ``workspace``).
    """
    if not isinstance(workspace_root, str | os.PathLike):
        raise TypeError(
            f"workspace_root must be a path (str or os.PathLike), "
            f"not {type(workspace_root).__name__}"
        )
    raw = Path(workspace_root).expanduser()
    if ".." in raw.parts or "\0" in str(raw):
        raise WorkspacePathError(
            f"workspace_root {str(workspace_root)!r} must not contain '..' or NUL; "
            "give the directory's real path"
        )
    root = Path(os.path.abspath(raw))
    for ancestor in (root, *root.parents):
        if ancestor.is_symlink():
            raise WorkspacePathError(
                f"workspace_root {str(workspace_root)!r} passes through the symlink "
                f"{ancestor}; give the directory's real path ({os.path.realpath(root)})"
            )
    if root.exists() and not root.is_dir():
        raise WorkspacePathError(f"workspace_root {root} exists and is not a directory")
    return root


@dataclass(frozen=True)
class Layout:
    """Where a sessions root keeps each session's workspace and host-only files."""

    root: Path
    # llm-wasm-sandbox 0.4: <root>/<id>/ is the workspace, records under <root>/.llm-wasm-sandbox/
    legacy: bool = False

    def session_dir(self, session_id: str) -> Path:
        """The host-only directory (session.json, logs) of ``session_id``."""
        checked = validate_session_id(session_id)
        return self.root / LEGACY_HOST_DIR / checked if self.legacy else self.root / checked

    def workspace(self, session_id: str) -> Path:
        checked = validate_session_id(session_id)
        return self.root / checked if self.legacy else workspace_of(self.root / checked)

    def candidate_ids(self) -> list[str]:
        """Names under the root that may be sessions (directories, not links)."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]

    def open(self, session_id: str) -> Path:
        """The workspace of ``session_id``, created (with its host directory) if new.

        A link in its place is refused: the guest would be handed the link's target.
        """
        workspace = self.workspace(session_id)
        for path in (workspace.parent, workspace):
            if path != self.root and path.is_symlink():
                raise WorkspacePathError(
                    f"session {session_id!r} cannot be opened: {path} is a symlink"
                )
        workspace.mkdir(parents=True, exist_ok=True)
        self.session_dir(session_id).mkdir(parents=True, exist_ok=True)
        return workspace


def layout_for(
    root: Path | None = None, workspace_root: str | os.PathLike[str] | None = None
) -> Layout:
    """The layout named by ``root`` (ours) or ``workspace_root`` (0.4's), else the default."""
    if root is not None and workspace_root is not None:
        raise ValueError(
            "pass root= (this package's layout) or workspace_root= (0.4's layout), not both"
        )
    if workspace_root is not None:
        return Layout(validate_workspace_root(workspace_root), legacy=True)
    return Layout(root if root is not None else sessions_root())


def session_dir(root: Path, session_id: str) -> Path:
    return root / validate_session_id(session_id)


def workspace_of(session_directory: Path) -> Path:
    return session_directory / "workspace"


def open_workspace(root: Path, session_id: str) -> Path:
    """The workspace of ``session_id``, created if this is a new session."""
    workspace = workspace_of(session_dir(root, session_id))
    workspace.mkdir(parents=True, exist_ok=True)
    return workspace


def spare_workspace(root: Path) -> Path:
    """A new, empty workspace under a fresh UUID, for an interpreter booted ahead of demand."""
    workspace = workspace_of(root / str(uuid.uuid4()))
    workspace.mkdir(parents=True)
    (workspace.parent / SPARE_MARKER).write_text(json.dumps(_this_process()))
    return workspace


def discard_spare(workspace: Path) -> None:
    """Remove a spare that was never used: its marker, its workspace and its directory (each
    only if otherwise empty, so nothing a guest wrote is lost)."""
    with contextlib.suppress(FileNotFoundError):
        (workspace.parent / SPARE_MARKER).unlink()
    for directory in (workspace, workspace.parent):
        try:
            directory.rmdir()
        except OSError:
            return


def adopt_spare(workspace: Path) -> None:
    """Make a spare's directory an ordinary session's (its session.json is written next)."""
    with contextlib.suppress(FileNotFoundError):
        (workspace.parent / SPARE_MARKER).unlink()


def remove_orphaned_spares(root: Path) -> int:
    """Delete the spares of processes that no longer run; how many were removed.

    Directories with neither session.json nor a marker are leftovers of a crash between
    creating a workspace and recording it (or of older versions) once they are an hour old.
    """
    removed = 0
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return 0
    for entry in entries:
        directory = Path(entry.path)
        if not entry.is_dir(follow_symlinks=False) or (directory / "session.json").exists():
            continue
        try:
            owner = json.loads((directory / SPARE_MARKER).read_text())
            orphaned = not _still_running(owner)
        except FileNotFoundError:
            orphaned = time.time() - entry.stat(follow_symlinks=False).st_mtime > 3600
        except (OSError, ValueError, TypeError):
            orphaned = True  # an unreadable marker is no live process's
        if orphaned:
            shutil.rmtree(directory, ignore_errors=True)
            removed += 1
    return removed


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid``, which tells a reused pid from the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _this_process() -> dict[str, object]:
    return {"pid": os.getpid(), "started": _process_start(os.getpid())}


def _still_running(owner: dict[str, object]) -> bool:
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, under another user
    return owner.get("started") in (None, _process_start(pid))
