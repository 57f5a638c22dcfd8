"""The local backend: a pool of worker processes, each holding one warm engine.

Each worker is a spawned process (never forked: the parent may run wasmtime threads) that
loads the compiled runtimes once, then runs items one at a time, so no item pays for a
process start or a module load. The parent talks to each worker over its own pipe and
watches its process sentinel, so a worker that dies (killed, out of host memory) is noticed
at once, its item's leftover session removed, and a fresh worker started in its place.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from sandbox.batch.dispatch import Outcome, Task
from sandbox.batch.models import BatchResult
from sandbox.core.runtime_type import RuntimeType

# A worker that dies this many times in a row before it is ready means the pool cannot start.
_MAX_STARTUP_FAILURES = 3


def _worker_main(conn: Connection, runtime: str, base_policy: dict[str, Any]) -> None:
    """A worker's whole life: warm up, then run items until the pipe closes."""
    from sandbox.batch.item_runner import run_item
    from sandbox.batch.models import BatchItem
    from sandbox.batch.warmup import warm_up
    from sandbox.factory import close_warm_pools

    kind = RuntimeType(runtime)
    name = f"pid:{os.getpid()}"
    try:
        warm_up(kind, base_policy)
        conn.send(("ready", os.getpid()))
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            item = BatchItem.model_validate(message)
            result = run_item(item, kind, base_policy, name, lambda s: conn.send(("session", s)))
            conn.send(("result", result.model_dump(mode="json")))
    finally:
        close_warm_pools()


class _Worker:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.ready = False
        self.task: Task | None = None
        self.session: str | None = None

    @property
    def name(self) -> str:
        return f"pid:{self.process.pid}"


class LocalPool:
    """``size`` worker processes on this machine."""

    def __init__(self, size: int, runtime: RuntimeType, base_policy: dict[str, Any]) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._runtime = runtime
        self._base_policy = base_policy
        self._startup_failures = 0
        self._workers = [self._start() for _ in range(size)]

    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main,
            args=(child, self._runtime.value, self._base_policy),
            name="llm-wasm-sandbox-batch",
            daemon=True,
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def idle(self) -> int:
        return sum(worker.ready and worker.task is None for worker in self._workers)

    def submit(self, task: Task) -> None:
        worker = next(w for w in self._workers if w.ready and w.task is None)
        worker.task = task
        worker.session = None
        worker.conn.send(task.item.model_dump(mode="json"))

    def wait(self, timeout: float) -> list[Outcome]:
        by_handle: dict[Any, _Worker] = {}
        for worker in self._workers:
            by_handle[worker.conn] = worker
            by_handle[worker.process.sentinel] = worker
        outcomes: list[Outcome] = []
        for handle in wait(list(by_handle), timeout):
            worker = by_handle[handle]
            if worker not in self._workers:
                continue  # already replaced through its other handle
            outcome = self._receive(worker) if handle is worker.conn else self._replace(worker)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def _receive(self, worker: _Worker) -> Outcome | None:
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            return self._replace(worker)  # the process is going: its sentinel follows
        if kind == "ready":
            worker.ready = True
            self._startup_failures = 0
        elif kind == "session":
            worker.session = payload
        elif kind == "result" and worker.task is not None:
            task, worker.task = worker.task, None
            return task, BatchResult.model_validate(payload)
        return None

    def _replace(self, worker: _Worker) -> Outcome | None:
        """Reap a dead worker, remove what its item left, and start another in its place."""
        worker.process.join(timeout=5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()
        reason = _exit_reason(worker.name, worker.process.exitcode)
        if worker.session is not None:
            from sandbox.sessions.files import delete_session_workspace

            delete_session_workspace(worker.session)
        if not worker.ready:
            self._startup_failures += 1
            if self._startup_failures >= _MAX_STARTUP_FAILURES:
                raise RuntimeError(f"batch workers cannot start: {reason} (3 times in a row)")
        self._workers[self._workers.index(worker)] = self._start()
        return (worker.task, reason) if worker.task is not None else None

    def kill(self, task: Task) -> None:
        for worker in self._workers:
            if worker.task is task and worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGKILL)

    def in_flight(self) -> dict[str, str]:
        return {w.name: w.task.item.id for w in list(self._workers) if w.task is not None}

    def close(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers = []


def _exit_reason(name: str, exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"worker {name} was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            pass
    return f"worker {name} exited with code {exitcode}"
