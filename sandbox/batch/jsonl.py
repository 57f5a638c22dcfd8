"""The CLI's files: items in, results appended as they finish, so a killed run loses nothing.

Each result is one line, written and flushed when the item finishes; ``--resume`` reads the
ids already in the output (dropping a last line cut short by the kill) and skips them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sandbox.batch.models import BatchResult


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def read_items(path: Path, skip: set[str], bad_line: Any) -> Iterator[dict[str, Any]]:
    """The JSON objects of ``path`` not in ``skip``; ``bad_line(result)`` gets the rest."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            line_id = f"line-{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                if line_id not in skip:
                    bad_line(_bad(line_id, f"line {number} is not JSON ({error.msg})"))
                continue
            if not isinstance(record, dict):
                if line_id not in skip:
                    bad_line(_bad(line_id, f"line {number} is not a JSON object"))
                continue
            if record.get("id") not in skip:
                yield record


def _bad(item_id: str, reason: str) -> BatchResult:
    return BatchResult(id=item_id, success=False, error=f"invalid item: {reason}", attempts=0)


def finished_ids(path: Path) -> set[str]:
    """Ids already in ``path``; a trailing partial line (the run was killed mid-write) is cut."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with path.open("r+b") as handle:
            handle.truncate(len(complete))
    ids: set[str] = set()
    for line in complete.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            ids.add(record["id"])
    return ids


class ResultWriter:
    """Appends one flushed JSON line per result."""

    def __init__(self, path: Path, *, append: bool) -> None:
        self._handle: IO[str] = path.open("a" if append else "w", encoding="utf-8")

    def write(self, result: BatchResult) -> None:
        self._handle.write(result.model_dump_json() + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
