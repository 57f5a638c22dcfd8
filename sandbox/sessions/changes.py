"""Which workspace files one call created or modified, by comparing size and mtime."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sandbox.host.guest_tree import TreeScan, scan
from sandbox.host.tree_watch import TreeWatch

Snapshot = dict[str, tuple[int, int]]
# Entries one listing visits at most, whatever a guest made; quotas stop guests long before.
MAX_LISTED_ENTRIES = 100_000


def scan_workspace(
    workspace: Path,
    max_entries: int = MAX_LISTED_ENTRIES,
    on_directory: Callable[[int], object] | None = None,
) -> TreeScan:
    """The workspace's regular files and what it costs the disk; links are never followed."""
    return scan(workspace, max_entries=max_entries, on_directory=on_directory)


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


class WorkspaceView:
    """A session's workspace as of the last look, walked again only when something changed.

    Before a cell the host needs the workspace's files (to tell which the cell changed) and its
    size (the quota); after it, the files again when the guest made a call that could change
    one. A ``TreeWatch`` on the directories the last walk visited says whether anything
    changed them since (the guest, the file API, another process), so an unchanged workspace
    costs no walk at all.
    """

    def __init__(self, workspace: Path, max_entries: int) -> None:
        self._workspace = workspace
        self._max_entries = max_entries
        self._watch = TreeWatch()
        self._known: TreeScan | None = None

    def now(self) -> TreeScan:
        """The workspace as it is."""
        if self._known is not None and not self._watch.changed():
            return self._known
        return self._walk()

    def after_cell(self, guest_changed: bool) -> TreeScan:
        """The workspace after a cell; ``guest_changed``: the guest may have changed it."""
        if not guest_changed and self._known is not None:
            return self._known  # what changed it meanwhile, if anything, shows at now()
        return self._walk()

    def close(self) -> None:
        self._watch.close()

    def _walk(self) -> TreeScan:
        self._watch.changed()  # what happened so far, this walk sees
        found = scan_workspace(self._workspace, self._max_entries, self._watch.watch)
        self._known = found if found.complete else None
        return found
