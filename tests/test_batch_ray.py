"""run_batch on a real local Ray: the actors hold warm engines; one Ray for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from batch_support import (
    HOSTILE_ITEMS,
    check_deaths,
    check_hostile,
    death_items,
    death_policy,
    kill_workers_under,
)

from sandbox import run_batch

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    from sandbox.batch.ray_backend import ensure_ray

    started = ensure_ray(None)
    yield
    if started:
        ray.shutdown()


def test_hostile_items_on_ray_actors() -> None:
    with run_batch(HOSTILE_ITEMS, backend="ray", workers=2) as run:
        results = list(run)
    check_hostile(results)
    assert {r.worker.split(":pid:")[0] for r in results if r.worker} != {""}
    assert all(r.worker.startswith("ray:") for r in results if r.worker)


def test_dead_actor_is_replaced_and_its_item_retried_once(tmp_path: Path) -> None:
    with run_batch(
        death_items(tmp_path), backend="ray", workers=1, policy=death_policy(tmp_path)
    ) as run:
        killer, failures = kill_workers_under(run, tmp_path)
        results = list(run)
    killer.join(timeout=60)
    assert not failures, failures
    check_deaths(results)
