"""Where host tools run: never on the guest's thread, always under the cell's deadline.

A guest waits for its tool inside a host call, so the tool runs elsewhere and the guest's
thread waits at most until the cell's deadline. Sync tools run on daemon worker threads (a
Python thread cannot be killed: a tool that hangs keeps its worker, which never blocks the
process's exit, and the pool starts another for the next call); coroutine tools run on one
event loop thread, and a call past the deadline cancels its task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any


class DeadlineExceeded(Exception):
    """The tool did not finish before the cell's deadline (not a TimeoutError the tool raised)."""


_Job = tuple[concurrent.futures.Future[Any], Callable[[], Any]]


class _Workers:
    """Daemon threads for sync tools; a busy (or hung) worker never delays another call."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, function: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._idle:
                self._idle -= 1  # claimed: that worker takes the job below
            else:
                threading.Thread(
                    target=self._work, name="llm-wasm-sandbox-tool", daemon=True
                ).start()
        self._jobs.put((future, function))
        return future

    def _work(self) -> None:
        while True:
            future, function = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function())
                except BaseException as error:  # the tool's failure is the guest's answer
                    future.set_exception(error)
            with self._lock:
                self._idle += 1


class _Loop:
    """One event loop on a daemon thread, started at the first coroutine tool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        with self._lock:
            if self._loop is None:
                loop = self._loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="llm-wasm-sandbox-tool-loop", daemon=True
                ).start()
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)


_workers = _Workers()
_loop = _Loop()


def on_tool_loop(coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
    """Run ``coroutine`` on the loop coroutine tools run on (where the MCP bridge keeps its
    client sessions, so a bridged tool's call and its session share one loop)."""
    return _loop.submit(coroutine)


def run_tool(
    function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], timeout: float
) -> Any:
    """``function(*args, **kwargs)``'s value (awaited if it is a coroutine) within ``timeout``.

    Raises what the tool raised, or DeadlineExceeded when it did not finish in time (a
    coroutine is then cancelled; a sync tool is left to finish on its worker).
    """
    if inspect.iscoroutinefunction(function):
        future = _loop.submit(function(*args, **kwargs))
    else:
        future = _workers.submit(lambda: _settled(function(*args, **kwargs)))
    try:
        return future.result(timeout=max(0.0, timeout))
    except concurrent.futures.TimeoutError:  # the builtin TimeoutError, since Python 3.11
        if future.done():
            raise  # the tool's own TimeoutError, not the deadline
        future.cancel()
        raise DeadlineExceeded from None


def _settled(value: Any) -> Any:
    """A sync callable may still return an awaitable (a partial of a coroutine function)."""
    if asyncio.iscoroutine(value):
        return _loop.submit(value).result()
    return value
