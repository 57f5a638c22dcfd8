"""Per-call logs kept when ``ExecutionPolicy.preserve_logs`` is on.

Each call appends one JSON line (time, code, full result) to ``<session dir>/logs.jsonl``,
beside the workspace, so the guest can neither read nor rewrite its own history. The log is
bounded like everything else a guest can make grow: past ``log_max_bytes`` it is rotated to
``logs.1.jsonl`` (the previous one is dropped), and a single entry keeps at most a quarter of
that, cutting the code and output it records.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.core.result import SandboxResult

LOG_FILE = "logs.jsonl"
OLD_LOG_FILE = "logs.1.jsonl"
_CUT_MARK = "\n[... cut to fit the log size limit]"


def append(session_directory: Path, code: str, result: SandboxResult, max_bytes: int) -> None:
    """Log one call; the log files never hold more than ``2 * max_bytes`` together."""
    entry: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(),
        "code": code,
        "result": result.model_dump(mode="json"),
    }
    line = json.dumps(entry) + "\n"
    if len(line) > max_bytes // 4:
        line = _shortened(entry, max_bytes // 4)
    path = session_directory / LOG_FILE
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = 0
    if size and size + len(line) > max_bytes:
        os.replace(path, session_directory / OLD_LOG_FILE)
    with path.open("a", encoding="utf-8") as log:
        log.write(line)


def read(session_directory: Path) -> list[dict[str, object]]:
    """Every logged call still kept for a session, oldest first."""
    entries: list[dict[str, object]] = []
    for name in (OLD_LOG_FILE, LOG_FILE):
        path = session_directory / name
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            entries.extend(json.loads(line) for line in lines if line)
    return entries


def _shortened(entry: dict[str, Any], budget: int) -> str:
    """The entry as one JSON line of about ``budget`` bytes at most, long texts cut with a mark."""
    result = entry["result"]
    holders = {"code": entry, "stdout": result, "stderr": result}
    originals = {key: str(holder[key]) for key, holder in holders.items()}
    for key, holder in holders.items():
        holder[key] = ""
    # JSON escaping can double a character's size, so each text gets half its even share.
    share = max(0, (budget - len(json.dumps(entry)) - 3 * len(_CUT_MARK)) // 6)
    for key, holder in holders.items():
        text = originals[key]
        holder[key] = text if len(text) <= share else text[:share] + _CUT_MARK
    return json.dumps(entry) + "\n"
