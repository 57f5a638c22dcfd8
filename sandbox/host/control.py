"""The caller's handle on one running cell: cancel it from any thread, and receive its output.

A wasmtime Store may only be touched by the thread running it, so neither cancelling nor
streaming reaches into the guest from outside. ``cancel()`` only sets a flag and wakes a
sleeping guest; the guest's own thread sees the flag at its next epoch check (every
``EPOCH_SLICE_SECONDS``, see ``guest_store.py``) or when its sleep wakes, and stops itself.
Output is handed to the callback on the guest's thread too, coalesced by ``OutputStream``, so
a flood of prints costs the caller a few calls, not one per print.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections.abc import Callable

# A stream name ("stdout" or "stderr") and a chunk of text.
OutputCallback = Callable[[str, str], None]

# Coalescing: output goes out at most once per interval (the first write after a quiet
# interval at once), or as soon as this much is pending.
FLUSH_INTERVAL_SECONDS = 0.05
FLUSH_BYTES = 64 * 1024

_STREAM_NAMES = {1: "stdout", 2: "stderr"}
_log = logging.getLogger("sandbox.stream")


class CellControl:
    """Cancel one execute() call from any thread, and stream its output as it is written.

    Pass one to ``Sandbox.execute(..., control=...)`` when the code that cancels is not the
    code that calls (``Sandbox.cancel()`` covers the common case). A control is for one call.
    """

    def __init__(self, on_output: OutputCallback | None = None) -> None:
        if on_output is not None and not callable(on_output):
            raise TypeError(
                f"on_output must be a callable taking (stream, text), not {type(on_output).__name__}"
            )
        self.on_output = on_output
        self._cancelled_at: float | None = None
        self._lock = threading.Lock()
        self._wakers: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._cancelled_at is not None

    @property
    def cancelled_at(self) -> float | None:
        """When cancel() was first called (time.monotonic()), or None."""
        return self._cancelled_at

    def cancel(self) -> None:
        """Stop the call as soon as its guest reaches an epoch check or a sleep (< 100 ms)."""
        with self._lock:
            if self._cancelled_at is None:
                self._cancelled_at = time.monotonic()
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    def attach(self, wake: Callable[[], None]) -> None:
        """Have cancel() call ``wake`` (the guest's sleep event) while the cell runs."""
        with self._lock:
            self._wakers.append(wake)
            cancelled = self._cancelled_at is not None
        if cancelled:
            wake()

    def detach(self, wake: Callable[[], None]) -> None:
        with self._lock:
            if wake in self._wakers:
                self._wakers.remove(wake)


class OutputStream:
    """Coalesces one cell's output and hands it to the caller's callback, in write order.

    Everything runs on the guest's thread. A write after ``FLUSH_INTERVAL_SECONDS`` without a
    flush goes out at once (a lone print is seen without delay); later writes wait for the
    interval to end, or for ``FLUSH_BYTES`` to be pending, so a flood of prints costs a few
    calls a second. ``flush_due`` lets the epoch check and sleeps flush a guest that went
    quiet; ``close`` flushes the rest before the cell's result is built. A callback that raises is logged once and counted; the guest never
    sees it.
    """

    def __init__(self, callback: OutputCallback) -> None:
        self._callback = callback
        self._pending: list[tuple[int, bytes]] = []
        self._pending_bytes = 0
        self._last_flush = -FLUSH_INTERVAL_SECONDS
        self._decoders = {
            fd: codecs.getincrementaldecoder("utf-8")(errors="replace") for fd in _STREAM_NAMES
        }
        self.callback_errors = 0
        self.first_callback_error: str | None = None

    def write(self, fd: int, data: bytes) -> None:
        if not data:
            return
        self._pending.append((fd, data))
        self._pending_bytes += len(data)
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()
        else:
            self.flush_due()

    def seconds_until_due(self) -> float | None:
        """How long until pending output must go out, or None when nothing is pending."""
        if not self._pending:
            return None
        return max(0.0, self._last_flush + FLUSH_INTERVAL_SECONDS - time.monotonic())

    def flush_due(self) -> None:
        if self._pending and time.monotonic() - self._last_flush >= FLUSH_INTERVAL_SECONDS:
            self.flush()

    def flush(self, final: bool = False) -> None:
        """Hand the pending output over, one call per run of the same stream."""
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        self._last_flush = time.monotonic()
        runs: list[tuple[int, list[bytes]]] = []
        for fd, data in pending:
            if runs and runs[-1][0] == fd:
                runs[-1][1].append(data)
            else:
                runs.append((fd, [data]))
        for fd, parts in runs:
            self._emit(fd, self._decoders[fd].decode(b"".join(parts)))
        if final:
            for fd, decoder in self._decoders.items():
                self._emit(fd, decoder.decode(b"", final=True))

    def close(self) -> None:
        self.flush(final=True)

    def _emit(self, fd: int, text: str) -> None:
        if not text:
            return
        try:
            self._callback(_STREAM_NAMES[fd], text)
        except Exception as error:  # the caller's bug must not end the guest's cell
            self.callback_errors += 1
            if self.first_callback_error is None:
                self.first_callback_error = f"{type(error).__name__}: {error}"
                _log.warning("the output callback raised; output keeps streaming", exc_info=True)
