"""run_batch(): stream items to a pool of warm workers and results back as they finish.

The dispatcher is the same for every backend: it validates items lazily (a million-line input
is never held in memory), keeps each worker busy with one item, retries an item once when its
worker dies under it, stops a worker that outlives an item's deadline, and yields results in
completion order (or input order with ``ordered=True``). A backend only starts workers, ships
an item to an idle one and reports what came back; see local.py and ray_backend.py.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from sandbox.batch.models import BatchItem, BatchResult, describe_errors
from sandbox.core.policy import ExecutionPolicy
from sandbox.core.runtime_type import RuntimeType
from sandbox.runtimes import runtime_for

Backend = Literal["local", "ray"]
# A worker gets this long past an item's own timeout (boot, files, result) before it is
# presumed hung and replaced; the guest's deadline itself is enforced inside the worker.
WATCHDOG_GRACE_SECONDS = 30.0
MAX_ATTEMPTS = 2


@dataclass
class Task:
    """An item on its way through the pool."""

    index: int
    item: BatchItem
    timeout: float
    attempts: int = 0
    deadline: float = field(default=0.0)


# What a backend reports for a task: its result, or why its worker died.
Outcome = tuple[Task, BatchResult | str]


class WorkerPool(Protocol):
    def idle(self) -> int:
        """Workers ready for an item now."""

    def submit(self, task: Task) -> None:
        """Ship ``task`` to an idle worker."""

    def wait(self, timeout: float) -> list[Outcome]:
        """Block until something finished (or ``timeout`` passed), replacing dead workers."""

    def kill(self, task: Task) -> None:
        """Stop the worker running ``task``; its death is reported by a later wait()."""

    def in_flight(self) -> dict[str, str]:
        """Worker name -> id of the item it runs (for monitoring)."""

    def close(self) -> None: ...


def default_workers() -> int:
    """The cores this process may use (affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0))


class BatchRun(Iterator[BatchResult]):
    """The results of a batch, as they finish. Closing it (or exhausting it) stops the workers."""

    def __init__(
        self,
        items: Iterable[BatchItem | Mapping[str, Any]],
        pool: WorkerPool,
        base_timeout: float,
        *,
        ordered: bool,
    ) -> None:
        self._source = enumerate(items)
        self._source_done = False
        self._pool = pool
        self._base_timeout = base_timeout
        self._ordered = ordered
        self._queue: deque[Task] = deque()
        self._running: dict[int, Task] = {}
        self._ready: deque[BatchResult] = deque()
        self._held: dict[int, BatchResult] = {}  # ordered: finished ahead of their turn
        self._next_index = 0
        self._seen_ids: set[str] = set()
        self._closed = False

    def __iter__(self) -> BatchRun:
        return self

    def __next__(self) -> BatchResult:
        while not self._ready:
            if self._closed:
                raise StopIteration
            self._fill()
            if not self._running and not self._queue and self._source_done:
                self._release_all()
                if not self._ready:
                    self.close()
                    raise StopIteration
                break
            self._collect()
        return self._ready.popleft()

    def in_flight(self) -> dict[str, str]:
        """Worker name -> id of the item it is running now."""
        return self._pool.in_flight()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()

    def __enter__(self) -> BatchRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _fill(self) -> None:
        """Hand queued items to idle workers, reading more of the input only as needed."""
        while self._pool.idle() > 0:
            if not self._queue and not self._read_one():
                return
            task = self._queue.popleft()
            task.attempts += 1
            task.deadline = time.monotonic() + task.timeout + WATCHDOG_GRACE_SECONDS
            self._running[task.index] = task
            self._pool.submit(task)

    def _read_one(self) -> bool:
        """Queue the next valid input item (invalid ones become results); False at the end."""
        while not self._source_done:
            try:
                index, raw = next(self._source)
            except StopIteration:
                self._source_done = True
                return False
            item_or_error = _validate(raw, index)
            if isinstance(item_or_error, BatchItem) and item_or_error.id in self._seen_ids:
                item_or_error = _invalid(index, item_or_error.id, "duplicate id in this batch")
            if isinstance(item_or_error, BatchResult):
                self._finish(index, item_or_error)
                continue
            self._seen_ids.add(item_or_error.id)
            self._queue.append(Task(index, item_or_error, self._timeout_of(item_or_error)))
            return True
        return False

    def _timeout_of(self, item: BatchItem) -> float:
        value = item.policy.get("timeout_seconds", self._base_timeout)
        return float(value) if isinstance(value, int | float) else self._base_timeout

    def _collect(self) -> None:
        now = time.monotonic()
        next_deadline = min((task.deadline for task in self._running.values()), default=now + 60)
        for task, outcome in self._pool.wait(max(0.0, next_deadline - now)):
            self._running.pop(task.index, None)
            if isinstance(outcome, BatchResult):
                self._finish(task.index, outcome.model_copy(update={"attempts": task.attempts}))
            elif task.attempts < MAX_ATTEMPTS:
                self._queue.appendleft(task)
            else:
                self._finish(
                    task.index,
                    BatchResult(
                        id=task.item.id,
                        success=False,
                        language=task.item.language,
                        error=f"its worker died on each of {task.attempts} attempts; "
                        f"last: {outcome}",
                        attempts=task.attempts,
                    ),
                )
        now = time.monotonic()
        for task in list(self._running.values()):
            if task.deadline <= now:
                task.deadline = float("inf")  # killed once; its death comes through wait()
                self._pool.kill(task)

    def _finish(self, index: int, result: BatchResult) -> None:
        if not self._ordered:
            self._ready.append(result)
            return
        self._held[index] = result
        while self._next_index in self._held:
            self._ready.append(self._held.pop(self._next_index))
            self._next_index += 1

    def _release_all(self) -> None:
        for index in sorted(self._held):
            self._ready.append(self._held.pop(index))


def _validate(raw: BatchItem | Mapping[str, Any], index: int) -> BatchItem | BatchResult:
    if isinstance(raw, BatchItem):
        return raw
    if not isinstance(raw, Mapping):
        return _invalid(
            index,
            f"#{index}",
            f"an item must be a BatchItem or a mapping, not {type(raw).__name__}",
        )
    try:
        return BatchItem.model_validate(raw)
    except ValidationError as error:
        raw_id = raw.get("id")
        item_id = raw_id if isinstance(raw_id, str) and raw_id else f"#{index}"
        return _invalid(index, item_id, describe_errors(error))


def _invalid(index: int, item_id: str, reason: str) -> BatchResult:
    return BatchResult(id=item_id, success=False, error=f"invalid item: {reason}", attempts=0)


def run_batch(
    items: Iterable[BatchItem | Mapping[str, Any]],
    *,
    runtime: RuntimeType | str = RuntimeType.PYTHON,
    policy: ExecutionPolicy | None = None,
    workers: int | None = None,
    backend: Backend = "local",
    ray_address: str | None = None,
    ordered: bool = False,
) -> BatchRun:
    """Run every item in a fresh sandbox of its own on a pool of warm workers.

    Returns an iterator of BatchResult as items finish (``ordered=True``: in input order),
    each tagged with its item's id. An invalid item, a guest that crashes or hits a limit,
    becomes a failed result; the batch goes on. A worker that dies is replaced and its item
    retried once. ``backend="ray"`` runs the workers as Ray actors: on a local Ray started
    for the batch (``ray_address=None``, unless Ray is already initialised) or on the cluster
    at ``ray_address``. ``workers`` defaults to the usable cores (of the cluster, for Ray).
    """
    kind = RuntimeType(runtime_for(runtime).name)
    if policy is not None and not isinstance(policy, ExecutionPolicy):
        raise TypeError(f"policy must be an ExecutionPolicy, not {type(policy).__name__}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    base = policy if policy is not None else ExecutionPolicy()
    base_policy = base.model_dump(mode="json")
    pool: WorkerPool
    if backend == "local":
        if ray_address is not None:
            raise ValueError("ray_address needs backend='ray'")
        from sandbox.batch.local import LocalPool

        pool = LocalPool(workers or default_workers(), kind, base_policy)
    elif backend == "ray":
        from sandbox.batch.ray_backend import RayPool

        pool = RayPool(workers, kind, base_policy, ray_address)
    else:
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    return BatchRun(items, pool, base.timeout_seconds, ordered=ordered)


__all__ = ["BatchRun", "default_workers", "run_batch"]
