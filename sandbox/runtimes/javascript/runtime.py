"""How the host boots the QuickJS-NG reactor with our driver.

The reactor exports ``qjs_init_argv`` but no eval entry point, so the driver is passed as an
ES module with ``-m -e``: its top-level loop never returns, and because it is a module every
``await`` in it runs QuickJS's job queue and timers, which is what makes promises, top-level
``await`` and ``setTimeout`` work inside cells.
"""

from __future__ import annotations

import struct
from functools import cached_property
from importlib import metadata, resources
from pathlib import Path

import wasmtime

from sandbox.core.errors import GuestStartupError
from sandbox.host.engine import shared_engine
from sandbox.host.guest import BootSpec, LiveGuest
from sandbox.host.module_cache import GuestBinary, binary_key, is_cached, load_module
from sandbox.host.parked_guest import ParkedGuest

# Pinned: qjs-wasi-reactor.wasm 0.17.0 (QuickJS-NG reactor build).
QJS_WASM_SHA256 = "1a4e0bce82f2faed14f5e2620174e3daf33e161bad75ce955ceeaca1f7c82572"
_DISTRIBUTION = "qjs-wasi-reactor.wasm"
# Where requireVendor() finds the vendored packages: the guest path reserved for the curated
# packages (Python's are there too). Not 0.4's /data_js, which 0.4 code may still mount itself.
VENDOR_GUEST_DIR = "/packages"


class JavaScriptRuntime:
    name = "javascript"
    warm_pool = True
    cell_file = "cell.js"

    @cached_property
    def binary(self) -> GuestBinary:
        try:
            located = metadata.distribution(_DISTRIBUTION).locate_file(
                "qjs-wasi-reactor/qjs-wasi-reactor.wasm"
            )
            path = Path(str(located))
        except metadata.PackageNotFoundError:
            path = Path("<the qjs-wasi-reactor.wasm package is not installed>")
        return GuestBinary(
            name="quickjs-ng-0.17.0", path=path, sha256=QJS_WASM_SHA256, package=_DISTRIBUTION
        )

    @cached_property
    def _driver_source(self) -> str:
        # sandboxUtils first, so the driver counts it among the built-in globals; then the
        # echo's formatter and the cell rewriter, which the driver's loop uses.
        files = resources.files(__package__)
        return "\n".join(
            files.joinpath(name).read_text(encoding="utf-8")
            for name in ("guest_utils.js", "guest_inspect.js", "guest_cells.js", "guest_driver.js")
        )

    def argv(self, driver_args: list[str]) -> list[str]:
        return ["qjs", "--std", "-m", "-e", self._driver_source, *driver_args]

    def boot(self, spec: BootSpec, workspace: Path) -> LiveGuest:
        return ParkedGuest(spec, self, workspace)

    def prepare(self) -> None:
        load_module(shared_engine(), self.binary)

    def is_prepared(self) -> bool:
        return is_cached(binary_key(self.binary))

    def guest_mounts(self) -> tuple[tuple[Path, str], ...]:
        # The packages requireVendor() loads, read-only.
        return ((Path(str(resources.files(__package__).joinpath("vendor"))), VENDOR_GUEST_DIR),)

    def start(self, store: wasmtime.Store, instance: wasmtime.Instance, argv: list[str]) -> None:
        exports = instance.exports(store)
        _call(exports["_initialize"], store)
        memory = exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        pointers = []
        for arg in argv:
            data = arg.encode("utf-8") + b"\0"
            pointer = _call(exports["malloc"], store, len(data))
            memory.write(store, data, pointer)
            pointers.append(pointer)
        argv_pointer = _call(exports["malloc"], store, 4 * len(pointers))
        memory.write(store, struct.pack(f"<{len(pointers)}I", *pointers), argv_pointer)
        if _call(exports["qjs_init_argv"], store, len(argv), argv_pointer) != 0:
            raise GuestStartupError("QuickJS rejected the driver (qjs_init_argv returned an error)")


def _call(export: object, store: wasmtime.Store, *args: int) -> int:
    assert isinstance(export, wasmtime.Func)
    result = export(store, *args)
    return int(result) if result is not None else 0
