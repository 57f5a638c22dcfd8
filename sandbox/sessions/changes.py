"""Which workspace files one call created or modified, by comparing size and mtime."""

from __future__ import annotations

from pathlib import Path

from sandbox.host.guest_tree import TreeScan, scan

Snapshot = dict[str, tuple[int, int]]
# Entries one listing visits at most, whatever a guest made; quotas stop guests long before.
MAX_LISTED_ENTRIES = 100_000


def scan_workspace(workspace: Path, max_entries: int = MAX_LISTED_ENTRIES) -> TreeScan:
    """The workspace's regular files and what it costs the disk; links are never followed."""
    return scan(workspace, max_entries=max_entries)


def snapshot(workspace: Path) -> Snapshot:
    """Every regular file under ``workspace`` (symlinks are not followed) -> (size, mtime_ns)."""
    return scan_workspace(workspace).files


def diff(before: Snapshot, after: Snapshot) -> tuple[list[str], list[str]]:
    """(created, modified), sorted."""
    created = sorted(path for path in after if path not in before)
    modified = sorted(
        path for path, state in after.items() if path in before and before[path] != state
    )
    return created, modified


def total_bytes(files: Snapshot) -> int:
    return sum(size for size, _mtime in files.values())
