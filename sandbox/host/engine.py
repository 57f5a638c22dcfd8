"""The process-wide wasmtime Engine and the clock that drives wall-clock deadlines.

One Engine is shared by every sandbox so compiled modules are shared too. Deadlines use epoch
interruption: a daemon thread bumps the engine epoch every ``EPOCH_TICK_SECONDS`` and each
store traps once its own deadline (counted in ticks) passes. Incrementing the epoch is the
only thread-safe way to stop a guest that is running on another thread.
"""

from __future__ import annotations

import math
import threading

import wasmtime

EPOCH_TICK_SECONDS = 0.005
GUEST_STACK_BYTES = 2 * 1024 * 1024

_engine: wasmtime.Engine | None = None
_engine_lock = threading.Lock()


def shared_engine() -> wasmtime.Engine:
    """The Engine every store in this process uses (fuel metering and epochs on)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _new_engine()
        return _engine


def _new_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.cranelift_opt_level = "speed"
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
