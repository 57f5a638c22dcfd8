"""The guest's stdout while the host streams a cell's output: flushed soon, cheaply.

Every write that reaches the host is a host call (~30 us), so a line-buffered stdout would
make a cell printing 100,000 lines twenty-five times slower. This keeps the 8 KiB buffer and
flushes at a newline when ``_WINDOW_SECONDS`` have passed since the last flush: a line printed
after a pause goes out at once, a flood costs one host call per window. What a burst leaves in
the buffer goes out with the next write after the window, before any sleep (``time.sleep`` is
wrapped), before stderr is written (so the two keep their order), and at the end of the cell.
``print(..., flush=True)`` flushes at once as usual.
"""

from __future__ import annotations

import sys
import time
from typing import Any, SupportsIndex, TextIO

_WINDOW_SECONDS = 0.01
_monotonic = time.monotonic
_sleep = time.sleep


class _Streamed:
    """A stand-in for one of the interpreter's text streams; everything else is the stream's."""

    def __init__(self, stream: TextIO, before_write: TextIO | None) -> None:
        self._stream = stream
        self._before_write = before_write  # stdout, flushed before stderr is written
        self._flushed = float("-inf")  # the first line goes out at once

    def write(self, text: str) -> int:
        if self._before_write is not None:
            self._before_write.flush()
        written = self._stream.write(text)
        if "\n" in text:
            now = _monotonic()
            if now - self._flushed >= _WINDOW_SECONDS:
                self._stream.flush()
                self._flushed = now
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _flushing_sleep(seconds: float | SupportsIndex) -> None:
    """time.sleep, after handing the host what stdout holds (a sleeping cell is idle)."""
    if isinstance(sys.stdout, _Streamed):
        sys.stdout.flush()
    _sleep(seconds)


def stream(on: bool) -> None:
    """Install the stand-ins for a streamed cell, or put the interpreter's streams back.

    Streams the cell bound itself are left alone.
    """
    out, err = sys.__stdout__, sys.__stderr__
    if out is None or err is None:
        return
    if on:
        if sys.stdout is out:
            sys.stdout = _Streamed(out, None)
        if sys.stderr is err:
            sys.stderr = _Streamed(err, out)
        time.sleep = _flushing_sleep
    else:
        if isinstance(sys.stdout, _Streamed):
            sys.stdout = out
        if isinstance(sys.stderr, _Streamed):
            sys.stderr = err
        time.sleep = _sleep
