"""Which workspace files one call created or modified, by comparing size and mtime."""

from __future__ import annotations

import os
from pathlib import Path

Snapshot = dict[str, tuple[int, int]]


def snapshot(workspace: Path) -> Snapshot:
    """Every regular file under ``workspace`` (symlinks are not followed) -> (size, mtime_ns)."""
    files: Snapshot = {}
    pending = [workspace]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                stat = entry.stat(follow_symlinks=False)
                files[Path(entry.path).relative_to(workspace).as_posix()] = (
                    stat.st_size,
                    stat.st_mtime_ns,
                )
    return files


def diff(before: Snapshot, after: Snapshot) -> tuple[list[str], list[str]]:
    """(created, modified), sorted."""
    created = sorted(path for path in after if path not in before)
    modified = sorted(
        path for path, state in after.items() if path in before and before[path] != state
    )
    return created, modified


def total_bytes(files: Snapshot) -> int:
    return sum(size for size, _mtime in files.values())
