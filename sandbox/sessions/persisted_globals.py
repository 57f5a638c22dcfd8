"""Where guest drivers keep a session's globals when ``auto_persist_globals`` is on.

The state lives in the workspace (``.sandbox-state/``) because only the guest can produce it:
Python values are pickled inside the guest and JavaScript values serialised to JSON there, so
the host never unpickles guest data. The host only reads the driver's small JSON report of what
was and was not saved, defensively, since the guest could have written anything there: a
huge file, or a symlink to a host file (which is refused, never followed).
"""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.host import guest_tree

STATE_DIR = ".sandbox-state"
_REPORT_LIMIT_BYTES = 256 * 1024


def guest_state_dir(workspace_guest_path: str) -> str:
    return f"{workspace_guest_path.rstrip('/')}/{STATE_DIR}"


def read_report(workspace: Path) -> tuple[list[str], dict[str, str]]:
    """(saved names, unsaved name -> reason) from the last cell, empty if unreadable."""
    try:
        raw = guest_tree.read_file(
            workspace, f"{STATE_DIR}/report.json", max_bytes=_REPORT_LIMIT_BYTES
        )
        report = json.loads(raw)
        saved = [str(name) for name in report["saved"]]
        unsaved = {str(name): str(reason) for name, reason in report["unsaved"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return [], {}
    return saved, unsaved
