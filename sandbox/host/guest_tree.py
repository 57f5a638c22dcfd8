"""Host access to a directory tree a guest can write, without ever following the guest's links.

A guest can replace any component of a workspace path with a symlink at any moment, even while
the host is using the path (a cell keeps running while the file API serves another thread).
Checking a path and then opening it is therefore a race the guest can win, and resolving a
path through the tree lets the guest choose which host file the host touches. Everything here
walks from a directory descriptor one component at a time with ``O_NOFOLLOW`` (``dir_fd=`` in
Python), so a link anywhere on the way is refused, never resolved, whatever the guest does
meanwhile. Regular files only: a FIFO or device the guest cannot make but a host could plant is
refused too, and opens never block.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sandbox.core.errors import WorkspacePathError

ALLOWED_PATHS = "a relative path inside the workspace, without '..', NUL bytes or symlinks"
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# What one directory entry costs the quota on top of its data: an inode and its name.
INODE_BYTES = 512


def relative_parts(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The components of a workspace-relative path, refused unless it stays inside."""
    raw = os.fspath(path)
    problem = None
    parts = PurePosixPath(raw).parts
    if "\0" in raw:
        problem = "contains a NUL byte"
    elif raw.startswith("/"):
        problem = "is absolute"
    elif not parts or parts == (".",):
        problem = "is empty or names the workspace itself"
    elif ".." in parts:
        problem = "contains a '..' component"
    if problem is not None:
        raise WorkspacePathError(f"workspace path {raw!r} {problem}; use {ALLOWED_PATHS}")
    return tuple(part for part in parts if part != ".")


@contextlib.contextmanager
def open_directory(
    root: Path, parts: tuple[str, ...], *, create: bool = False, shown: str = ""
) -> Iterator[int]:
    """A descriptor of ``root/parts...``, reached without following any link.

    ``create`` makes missing directories on the way. ``shown`` is the path as the caller gave
    it, for error messages.
    """
    current = os.open(root, _DIRECTORY_FLAGS)
    try:
        for index, part in enumerate(parts):
            try:
                following = _open_subdirectory(current, part, create)
            except OSError as error:
                shown = shown or "/".join(parts)
                raise _path_error(shown, parts[: index + 1], error, current) from None
            os.close(current)
            current = following
        yield current
    finally:
        os.close(current)


def read_file(root: Path, path: str | os.PathLike[str], *, max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file ``root/path``; more than ``max_bytes`` is refused."""
    parts = relative_parts(path)
    shown = os.fspath(path)
    with open_directory(root, parts[:-1], shown=shown) as parent:
        try:
            descriptor = os.open(parts[-1], os.O_RDONLY | _FILE_FLAGS, dir_fd=parent)
        except OSError as error:
            raise _path_error(shown, parts, error, parent) from None
    with os.fdopen(descriptor, "rb") as stream:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise WorkspacePathError(f"workspace path {shown!r} is not a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise FileTooLargeError(shown, info.st_size, max_bytes)
        data = stream.read() if max_bytes is None else stream.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise FileTooLargeError(shown, len(data), max_bytes)
    return data


def write_file(
    root: Path, path: str | os.PathLike[str], data: bytes, *, exclusive: bool = False
) -> None:
    """Create or replace the regular file ``root/path``, making its directories.

    With ``exclusive`` an existing entry (file, directory or link) is never replaced:
    FileExistsError is raised instead, decided atomically by the kernel.
    """
    parts = relative_parts(path)
    shown = os.fspath(path)
    flags = os.O_WRONLY | os.O_CREAT | _FILE_FLAGS | (os.O_EXCL if exclusive else 0)
    with open_directory(root, parts[:-1], create=True, shown=shown) as parent:
        try:
            descriptor = os.open(parts[-1], flags, 0o644, dir_fd=parent)
        except FileExistsError:
            raise FileExistsError(
                f"workspace path {shown!r} already exists; pass overwrite=True to replace it"
            ) from None
        except OSError as error:
            raise _path_error(shown, parts, error, parent) from None
    with os.fdopen(descriptor, "wb") as stream:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise WorkspacePathError(f"workspace path {shown!r} is not a regular file")
        os.ftruncate(descriptor, 0)
        stream.write(data)


def remove_file(root: Path, path: str | os.PathLike[str]) -> None:
    """Delete the regular file ``root/path``; links and directories are refused."""
    parts = relative_parts(path)
    shown = os.fspath(path)
    with open_directory(root, parts[:-1], shown=shown) as parent:
        if stat.S_ISDIR(_unlinked_mode(parent, parts, shown)):
            raise WorkspacePathError(
                f"workspace path {shown!r} is a directory; delete files one by one"
            )
        # Unlinking never follows a link, so a swap since the check deletes only a link.
        os.unlink(parts[-1], dir_fd=parent)


def remove_tree(root: Path, path: str | os.PathLike[str]) -> None:
    """Delete the file or directory tree ``root/path``; links inside are removed, not followed.

    A link as ``path`` itself is refused, like everywhere else.
    """
    parts = relative_parts(path)
    shown = os.fspath(path)
    with open_directory(root, parts[:-1], shown=shown) as parent:
        if stat.S_ISDIR(_unlinked_mode(parent, parts, shown)):
            # The descriptor-based rmtree never follows a link, whatever the guest swaps in.
            shutil.rmtree(parts[-1], dir_fd=parent)
        else:
            os.unlink(parts[-1], dir_fd=parent)


@dataclass
class TreeScan:
    """What a walk of a guest tree found: its regular files, and what the tree costs the disk."""

    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (size, mtime_ns)
    used_bytes: int = 0  # data of files and link targets, plus INODE_BYTES per entry
    entries: int = 0  # files, directories, links and anything else
    complete: bool = True  # False when the walk stopped at ``max_entries``


def scan(
    root: Path, *, max_entries: int, on_directory: Callable[[int], object] | None = None
) -> TreeScan:
    """Walk ``root`` from descriptors, links not followed, visiting at most ``max_entries``.

    The cap bounds the host's cost whatever the guest made: a tree past it is over its quota
    anyway, so an incomplete scan is still a sufficient answer. ``on_directory`` is given the
    descriptor of each directory as it is listed (to watch it for changes).
    """
    result = TreeScan()
    try:
        top = os.open(root, _DIRECTORY_FLAGS)
    except OSError:
        return result
    pending: list[tuple[int, str]] = [(top, "")]
    try:
        while pending:
            directory, prefix = pending.pop()
            try:
                if on_directory is not None:
                    on_directory(directory)
                _scan_directory(directory, prefix, result, pending, max_entries)
            finally:
                os.close(directory)
    finally:
        for directory, _prefix in pending:
            os.close(directory)
    return result


def _scan_directory(
    directory: int,
    prefix: str,
    result: TreeScan,
    pending: list[tuple[int, str]],
    max_entries: int,
) -> None:
    with os.scandir(directory) as entries:
        for entry in entries:
            if result.entries >= max_entries:
                result.complete = False
                return
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # gone since it was listed
            result.entries += 1
            result.used_bytes += INODE_BYTES
            name = prefix + entry.name
            if stat.S_ISDIR(info.st_mode):
                with contextlib.suppress(OSError):
                    pending.append(
                        (os.open(entry.name, _DIRECTORY_FLAGS, dir_fd=directory), name + "/")
                    )
            elif stat.S_ISREG(info.st_mode):
                result.used_bytes += info.st_size
                result.files[name] = (info.st_size, info.st_mtime_ns)
            else:
                result.used_bytes += info.st_size  # a link's size is its target's length


class FileTooLargeError(WorkspacePathError):
    def __init__(self, path: str, size: int, limit: int) -> None:
        super().__init__(f"{path!r} is {size} bytes, over the {limit}-byte limit for one read")
        self.size = size
        self.limit = limit


def _open_subdirectory(parent: int, name: str, create: bool) -> int:
    try:
        return os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            raise
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o755, dir_fd=parent)
    return os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)


def _path_error(shown: str, reached: tuple[str, ...], error: OSError, parent: int) -> Exception:
    """The error for ``error``, met opening component ``reached[-1]`` of ``shown`` in ``parent``."""
    crossed = "/".join(reached)
    if error.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(parent, reached[-1]):
        return WorkspacePathError(
            f"workspace path {shown!r} goes through the symlink {crossed!r}; use {ALLOWED_PATHS}"
        )
    if error.errno == errno.ENOTDIR:
        return WorkspacePathError(
            f"workspace path {shown!r} goes through {crossed!r}, which is not a directory; "
            f"use {ALLOWED_PATHS}"
        )
    if error.errno == errno.ENXIO:  # O_NONBLOCK open of a FIFO with no writer
        return WorkspacePathError(f"workspace path {shown!r} is not a regular file")
    if isinstance(error, FileNotFoundError):
        return FileNotFoundError(errno.ENOENT, f"no such file in the workspace: {shown!r}")
    if isinstance(error, IsADirectoryError):
        return WorkspacePathError(f"workspace path {shown!r} is a directory, not a file")
    return error


def _unlinked_mode(parent: int, parts: tuple[str, ...], shown: str) -> int:
    """The mode of the last component in ``parent``, refused if it is a link."""
    try:
        mode = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode
    except OSError as error:
        raise _path_error(shown, parts, error, parent) from None
    if stat.S_ISLNK(mode):
        raise WorkspacePathError(
            f"workspace path {shown!r} is the symlink {shown!r}; use {ALLOWED_PATHS}"
        )
    return mode


def _is_link(parent: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False
