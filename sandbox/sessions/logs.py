"""Per-call logs kept when ``ExecutionPolicy.preserve_logs`` is on.

Each call appends one JSON line (time, code, full result) to ``<session dir>/logs.jsonl``,
beside the workspace, so the guest can neither read nor rewrite its own history.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sandbox.core.result import SandboxResult

LOG_FILE = "logs.jsonl"


def append(session_directory: Path, code: str, result: SandboxResult) -> None:
    entry = {
        "time": datetime.now(UTC).isoformat(),
        "code": code,
        "result": result.model_dump(mode="json"),
    }
    with (session_directory / LOG_FILE).open("a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


def read(session_directory: Path) -> list[dict[str, object]]:
    """Every logged call of a session, oldest first."""
    path = session_directory / LOG_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
