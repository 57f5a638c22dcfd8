"""The workspace part of a checkpoint: a manifest of its tree over content-addressed copies.

A checkpoint records every directory, link and regular file of the workspace; file contents
go to a host directory beside the session (never inside the workspace, so the guest cannot
reach or alter them), one copy per distinct content (SHA-256), so a file unchanged across
checkpoints is stored once. A file whose size and mtime equal the previous manifest's entry is
not read again. Copies use ``os.copy_file_range``, which shares extents (a reflink) where the
filesystem can and copies inside the kernel elsewhere (ext4).

Restoring makes the workspace equal to a manifest: entries it does not name are removed, the
rest recreated, and files rewritten only where their size or mtime differ (a guest that edits
a file and then forges its mtime fools this, as it fools ``files_modified``). Both run under
the sandbox's lock, so no cell of the session runs meanwhile; links are never followed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from sandbox.core.errors import CheckpointError
from sandbox.host.guest_tree import INODE_BYTES

# path -> (kind, size, mtime_ns, digest for files / target for links / "" for directories)
Entry = tuple[str, int, int, str]
Manifest = dict[str, Entry]
_CHUNK = 1 << 20


def _walk(workspace: Path, max_entries: int) -> Iterable[tuple[str, os.stat_result]]:
    """Every entry under ``workspace`` (relative path, lstat), parents before children."""
    pending, count = [""], 0
    while pending:
        relative = pending.pop()
        with os.scandir(workspace / relative if relative else workspace) as entries:
            for entry in entries:
                count += 1
                if count > max_entries:
                    raise CheckpointError(
                        f"the workspace holds more than {max_entries} entries; a checkpoint "
                        "records at most workspace_max_files"
                    )
                path = f"{relative}/{entry.name}" if relative else entry.name
                info = entry.stat(follow_symlinks=False)
                yield path, info
                if stat.S_ISDIR(info.st_mode):
                    pending.append(path)


def _copy(source: int, target: int, size: int) -> None:
    """Copy ``size`` bytes between descriptors: a reflink or an in-kernel copy if possible."""
    try:
        while size > 0:
            done = os.copy_file_range(source, target, size)
            if done == 0:
                break
            size -= done
    except (AttributeError, OSError):
        os.lseek(source, 0, os.SEEK_SET)
        os.lseek(target, 0, os.SEEK_SET)
        with os.fdopen(os.dup(source), "rb") as src, os.fdopen(os.dup(target), "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)


def _check_restorable(entries: list[tuple[str, os.stat_result]], max_bytes: int) -> None:
    """Refuse a workspace whose restored copy would not fit ``max_bytes`` (the quota)."""
    size = sum(
        info.st_size + INODE_BYTES
        if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)
        else INODE_BYTES
        for _, info in entries
    )
    if size > max_bytes:
        raise CheckpointError(
            f"the workspace would take {size} bytes once restored, more than "
            f"workspace_max_bytes={max_bytes} (every path counts at its full size, so hard "
            "links and sparse files count once per path and at their apparent size); remove "
            "files before taking a checkpoint or forking"
        )


class FileStore:
    """Content-addressed copies of a session's workspace files, in a host-only directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def snapshot(
        self, workspace: Path, previous: Manifest | None, max_entries: int, max_bytes: int
    ) -> tuple[Manifest, int]:
        """(manifest of ``workspace``, bytes newly stored for it).

        Refused before anything is read or stored when the workspace, as a restore would
        write it, exceeds ``max_bytes``: every path is restored as its own file at its full
        size, so hard links (one inode, many paths) and sparse files (a large size on few
        blocks), which cost the guest almost nothing to make, would otherwise let one
        restore or fork write many times the quota to the host disk."""
        entries = list(_walk(workspace, max_entries))
        _check_restorable(entries, max_bytes)
        manifest: Manifest = {}
        stored = 0
        for path, info in entries:
            if stat.S_ISDIR(info.st_mode):
                manifest[path] = ("dir", 0, 0, "")
            elif stat.S_ISLNK(info.st_mode):
                manifest[path] = ("link", 0, 0, os.readlink(workspace / path))
            elif stat.S_ISREG(info.st_mode):
                old = (previous or {}).get(path)
                key = ("file", info.st_size, info.st_mtime_ns)
                if old is not None and old[:3] == key and (self.directory / old[3]).is_file():
                    manifest[path] = old
                    continue
                digest, added = self._store(workspace / path, info.st_size)
                manifest[path] = (*key, digest)
                stored += added
        return manifest, stored

    def _store(self, path: Path, size: int) -> tuple[str, int]:
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            digest = hashlib.sha256()
            with os.fdopen(os.dup(descriptor), "rb") as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
            name = digest.hexdigest()
            blob = self.directory / name
            if blob.is_file():
                return name, 0
            partial = self.directory / f".{name}.part"
            target = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.lseek(descriptor, 0, os.SEEK_SET)
                _copy(descriptor, target, size)
            finally:
                os.close(target)
            os.replace(partial, blob)
            return name, size
        finally:
            os.close(descriptor)

    def restore(self, workspace: Path, manifest: Manifest, max_entries: int) -> None:
        """Make ``workspace`` hold exactly what ``manifest`` recorded."""
        current = dict(_walk(workspace, max_entries + len(manifest)))
        for path in sorted(current, key=len, reverse=True):  # children before parents
            info = current[path]
            kind = (
                "dir"
                if stat.S_ISDIR(info.st_mode)
                else "link"
                if stat.S_ISLNK(info.st_mode)
                else "file"
                if stat.S_ISREG(info.st_mode)
                else "other"
            )
            wanted = manifest.get(path)
            if wanted is not None and wanted[0] == kind and kind != "link":
                continue
            if wanted is not None and kind == "link" and wanted[3] == os.readlink(workspace / path):
                continue
            if kind == "dir":
                shutil.rmtree(workspace / path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(workspace / path)
        for path in sorted(manifest):  # parents before children
            kind, size, mtime_ns, detail = manifest[path]
            target = workspace / path
            found = current.get(path)
            if kind == "dir":
                target.mkdir(exist_ok=True)
            elif kind == "link":
                if not target.is_symlink():
                    os.symlink(detail, target)
            elif found is None or (found.st_size, found.st_mtime_ns) != (size, mtime_ns):
                self._write(target, detail, size, mtime_ns)

    def _write(self, target: Path, digest: str, size: int, mtime_ns: int) -> None:
        source = os.open(self.directory / digest, os.O_RDONLY | os.O_CLOEXEC)
        partial = target.with_name(f".{target.name}.restore")
        try:
            out = os.open(
                partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
            )
            try:
                _copy(source, out, size)
            finally:
                os.close(out)
        finally:
            os.close(source)
        os.utime(partial, ns=(mtime_ns, mtime_ns))
        os.replace(partial, target)

    def collect(self, manifests: Iterable[Manifest]) -> None:
        """Delete the copies no manifest in ``manifests`` refers to."""
        if not self.directory.is_dir():
            return
        live = {entry[3] for manifest in manifests for entry in manifest.values()}
        for blob in self.directory.iterdir():
            if blob.name not in live:
                with contextlib.suppress(FileNotFoundError):
                    blob.unlink()
