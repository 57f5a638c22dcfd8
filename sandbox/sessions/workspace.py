"""Where session workspaces live on the host, and how session ids are checked.

Layout under the sessions root (``$LLM_WASM_SANDBOX_HOME`` or the user data dir)::

    <root>/<session id>/workspace/   mounted read-write in the guest (at /app by default)
    <root>/<session id>/session.json host-only metadata the guest cannot touch

A pooled interpreter gets its session directory when it boots (a preopened directory cannot be
swapped later); it becomes a session when handed out and its session.json is written, so a
directory without session.json is a pool spare, not a session. A spare's directory also holds
``spare.json`` naming the process that booted it, so that spares a dead process left behind
(after a crash or SIGKILL) are recognised and removed by the next process that uses the root.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import platformdirs

from sandbox.core.errors import InvalidSessionIdError

HOME_ENV = "LLM_WASM_SANDBOX_HOME"
SPARE_MARKER = "spare.json"
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
