"""The Ray backend: the same warm workers as Ray actors, on one machine or a cluster.

Each actor holds one warm engine (it warms up in its constructor) and runs one item at a
time; items and results travel as the small JSON records of models.py. ``ray.wait`` hands
back results as they finish. An actor that dies (its node lost, its process killed) fails its
pending call with RayActorError: a new actor takes its place and the dispatcher retries the
item once. Nodes need llm-wasm-sandbox installed, and its runtimes compiled on first use.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from sandbox.batch.dispatch import Outcome, Task
from sandbox.batch.models import BatchItem, BatchResult
from sandbox.core.runtime_type import RuntimeType

try:
    import ray
    from ray.exceptions import RayActorError, RayError
except ImportError as error:  # pragma: no cover - depends on the optional extra
    raise ImportError("backend='ray' needs Ray: pip install 'llm-wasm-sandbox[ray]'") from error


class _BatchActor:
    """A Ray actor: one warm engine that runs items one at a time."""

    def __init__(self, runtime: str, base_policy: dict[str, Any]) -> None:
        from sandbox.batch.warmup import warm_up

        self._runtime = RuntimeType(runtime)
        self._base_policy = base_policy
        self._name = f"ray:{ray.get_runtime_context().get_node_id()[:8]}:pid:{os.getpid()}"
        warm_up(self._runtime, base_policy)

    def run(self, item: dict[str, Any]) -> dict[str, Any]:
        from sandbox.batch.item_runner import run_item

        result = run_item(
            BatchItem.model_validate(item), self._runtime, self._base_policy, self._name
        )
        return result.model_dump(mode="json")

    def pid(self) -> int:
        return os.getpid()

    def shutdown(self) -> None:
        """Discard the warm pool's spares before the actor is killed (no atexit then)."""
        from sandbox.factory import close_warm_pools

        close_warm_pools()


_RemoteActor = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_BatchActor)


def ensure_ray(address: str | None) -> bool:
    """Connect to Ray; True when this call started a local instance (to shut it down after)."""
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        ray.init(num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False, **quiet)
        return True
    ray.init(address=address, **quiet)
    return False


class RayPool:
    """``size`` actors (default: the cluster's CPUs)."""

    def __init__(
        self,
        size: int | None,
        runtime: RuntimeType,
        base_policy: dict[str, Any],
        address: str | None,
    ) -> None:
        self._owns_ray = ensure_ray(address)
        self._runtime = runtime
        self._base_policy = base_policy
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        count = size or max(1, int(resources.get("CPU", 1)))
        self._pids: dict[int, Any] = {}  # id(actor) -> ref of its pid (asked first, so ready)
        self._actors: list[Any] = [self._start() for _ in range(count)]
        self._running: dict[Any, tuple[Any, Task]] = {}  # object ref -> (actor, task)

    def _start(self) -> Any:
        actor: Any = _RemoteActor.remote(self._runtime.value, self._base_policy)
        self._pids[id(actor)] = actor.pid.remote()
        return actor

    def idle(self) -> int:
        return len(self._actors) - len(self._running)

    def submit(self, task: Task) -> None:
        busy = {id(actor) for actor, _ in self._running.values()}
        actor = next(actor for actor in self._actors if id(actor) not in busy)
        self._running[actor.run.remote(task.item.model_dump(mode="json"))] = (actor, task)

    def wait(self, timeout: float) -> list[Outcome]:
        if not self._running:
            return []
        done, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
        outcomes: list[Outcome] = []
        for ref in done:
            actor, task = self._running.pop(ref)
            try:
                outcomes.append((task, BatchResult.model_validate(ray.get(ref))))
            except RayActorError as error:
                self._replace(actor)
                outcomes.append((task, f"Ray actor died: {_first_line(error)}"))
            except RayError as error:
                self._replace(actor)
                outcomes.append((task, f"Ray task failed: {_first_line(error)}"))
        return outcomes

    def _replace(self, actor: Any) -> None:
        ray.kill(actor, no_restart=True)
        self._pids.pop(id(actor), None)
        self._actors[self._actors.index(actor)] = self._start()

    def kill(self, task: Task) -> None:
        for actor, running in self._running.values():
            if running is task:
                ray.kill(actor, no_restart=True)

    def in_flight(self) -> dict[str, str]:
        """``ray:pid:<pid>`` -> item id (the pid is the actor's, on whichever node it runs)."""
        names: dict[str, str] = {}
        for actor, task in list(self._running.values()):
            try:
                pid = ray.get(self._pids[id(actor)], timeout=10)
            except (KeyError, RayError):
                continue  # a dead or replaced actor
            names[f"ray:pid:{pid}"] = task.item.id
        return names

    def close(self) -> None:
        with contextlib.suppress(RayError):
            ray.get([actor.shutdown.remote() for actor in self._actors], timeout=30)
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []
        self._running.clear()
        if self._owns_ray:
            ray.shutdown()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
