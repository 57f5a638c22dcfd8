"""WASI wiring: exactly the directories, variables and streams a guest is handed.

Nothing is inherited from the host: argv and environment are explicit, stdin is empty, the
workspace is the only writable directory, data mounts and the driver's control directory are
read-only, and stdout/stderr go to bounded in-memory captures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import wasmtime

CONTROL_GUEST_PATH = "/.sandbox"
# WASI numbers preopens from 3 in the order they are made; the workspace comes first.
WORKSPACE_PREOPEN_FD = 3


@dataclass(frozen=True)
class GuestFilesystem:
    """The host directories a guest sees, and where."""

    workspace: Path
    workspace_guest_path: str
    read_only_mounts: tuple[tuple[Path, str], ...]
    # The driver's read-only control directory (parked drivers read their cells there).
    control_dir: Path | None = None

    @property
    def first_free_fd(self) -> int:
        """The lowest descriptor number after stdio and the preopens made below."""
        preopens = 1 + (self.control_dir is not None) + len(self.read_only_mounts)
        return WORKSPACE_PREOPEN_FD + preopens


def build_wasi_config(
    argv: list[str],
    env: Iterable[tuple[str, str]],
    filesystem: GuestFilesystem,
) -> wasmtime.WasiConfig:
    """The guest's WASI context. Its stdout and stderr stay unset: the quota router serves
    every write to fds 1 and 2 itself (see disk_quota.py), so WASI never sees one."""
    config = wasmtime.WasiConfig()
    config.argv = argv
    config.env = [list(pair) for pair in env]
    config.preopen_dir(str(filesystem.workspace), filesystem.workspace_guest_path, True)
    if filesystem.control_dir is not None:
        config.preopen_dir(str(filesystem.control_dir), CONTROL_GUEST_PATH, False)
    for host, guest in filesystem.read_only_mounts:
        config.preopen_dir(str(host), guest, False)
    return config
