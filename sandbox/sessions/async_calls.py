"""execute() from async code: on a worker thread, cancelled with the task, streamed as events.

A cell runs on a worker thread (wasmtime blocks the thread running a guest). Cancelling the
awaiting task cannot interrupt that thread, so it cancels the cell's ``CellControl`` instead and
waits, shielded, for the cell to stop (within 100 ms), then lets the cancellation go on: once
the task's cancellation completes, the sandbox is free for the next call.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from sandbox.core.result import SandboxResult
from sandbox.host.control import CellControl

# How one call of execute() is made with a given control.
Call = Callable[[CellControl], SandboxResult]
_T = TypeVar("_T")


@dataclass(frozen=True)
class OutputEvent:
    """Output the guest wrote, as astream() yields it: stream is "stdout" or "stderr"."""

    stream: str
    text: str


class _Run(Generic[_T]):
    """One call on a worker thread, which a cancelled task can wait out."""

    def __init__(self, call: Callable[[CellControl], _T], control: CellControl) -> None:
        self._call = call
        self.control = control
        self._lock = threading.Lock()
        self._abandoned = False
        self._started = False
        self.finished = threading.Event()

    def __call__(self) -> _T | None:
        with self._lock:
            if self._abandoned:  # cancelled before a worker took it: nothing to run
                return None
            self._started = True
        try:
            return self._call(self.control)
        finally:
            self.finished.set()

    def abandon(self) -> bool:
        """Cancel the call; returns whether it started (and so must be waited for)."""
        with self._lock:
            self._abandoned = True
            started = self._started
        self.control.cancel()
        return started


async def run_cancellable(call: Callable[[CellControl], _T], control: CellControl) -> _T:
    """``call(control)`` on a worker thread; a cancelled task cancels the cell, then itself."""
    run = _Run(call, control)
    try:
        result = await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        if run.abandon():
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(run.finished.wait)
        raise
    assert result is not None  # only an abandoned run returns None
    return result


async def stream(call: Call) -> AsyncGenerator[OutputEvent | SandboxResult, None]:
    """Run ``call``, yielding its output as it arrives and then its result.

    The output callback runs on the guest's thread and hands each event to the event loop
    (by its token, so it works from any thread); the loop's memory stream is unbounded, and
    what goes into it is bounded by the output caps and the coalescing.
    """
    token = anyio.lowlevel.current_token()
    send, receive = anyio.create_memory_object_stream[OutputEvent | SandboxResult | BaseException](
        math.inf
    )

    def deliver(item: OutputEvent | SandboxResult | BaseException) -> None:
        # The consumer may have left (or its loop ended): then nobody is listening.
        with contextlib.suppress(
            anyio.BrokenResourceError, anyio.ClosedResourceError, RuntimeError
        ):
            anyio.from_thread.run_sync(send.send_nowait, item, token=token)

    control = CellControl(lambda stream_name, text: deliver(OutputEvent(stream_name, text)))

    def produce() -> None:
        try:
            result: SandboxResult | BaseException = call(control)
        except BaseException as error:  # raised to the consumer, on its own task
            result = error
        deliver(result)

    worker = threading.Thread(target=produce, name="llm-wasm-sandbox-astream", daemon=True)
    worker.start()
    try:
        async with receive:
            async for item in receive:
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, SandboxResult):
                    return
    finally:
        control.cancel()  # the consumer left early: stop the cell (a no-op once it ended)
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(worker.join)
