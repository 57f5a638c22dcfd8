"""Where session workspaces live on the host, and how session ids are checked.

Layout under the sessions root (``$LLM_WASM_SANDBOX_HOME`` or the user data dir)::

    <root>/<session id>/workspace/   mounted read-write in the guest (at /app by default)
    <root>/<session id>/session.json host-only metadata the guest cannot touch

A pooled interpreter gets its session directory when it boots (a preopened directory cannot be
swapped later); it becomes a session when handed out and its session.json is written, so a
directory without session.json is a pool spare, not a session.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import platformdirs

from sandbox.core.errors import InvalidSessionIdError

HOME_ENV = "LLM_WASM_SANDBOX_HOME"
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
    return workspace
