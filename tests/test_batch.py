"""run_batch on the local backend: worker processes with real guests."""

from __future__ import annotations

import math
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

from sandbox import BatchItem, ExecutionPolicy, RuntimeType, run_batch
from sandbox.batch.humaneval import estimate_pass_at_k
from sandbox.batch.models import json_schemas, schema_text


def _sessions(home: Path) -> set[str]:
    return {path.name for path in home.iterdir()} if home.is_dir() else set()


def test_hostile_items_never_stop_the_batch(sessions_home: Path) -> None:
    before = _sessions(sessions_home)
    with run_batch(HOSTILE_ITEMS, workers=2) as run:
        results = list(run)
    check_hostile(results)
    assert _sessions(sessions_home) == before  # every item's workspace was removed


def test_ordered_results_and_kept_workspace() -> None:
    items = [
        BatchItem(id=f"n{i}", code=f"import time; time.sleep({0.05 * (5 - i)}); print({i})")
        for i in range(5)
    ]
    items.append(
        BatchItem(
            id="kept",
            code="open('out.txt', 'w').write('x')",
            keep_workspace=True,
            language=RuntimeType.PYTHON,
        )
    )
    results = list(
        run_batch(items, workers=2, ordered=True, policy=ExecutionPolicy(timeout_seconds=10))
    )
    assert [r.id for r in results] == [item.id for item in items]
    assert [r.stdout for r in results[:5]] == [f"{i}\n" for i in range(5)]
    kept = results[-1].workspace_path
    assert kept is not None and (Path(kept) / "out.txt").read_text() == "x"


def test_javascript_batch_runtime() -> None:
    results = list(run_batch([{"id": "j", "code": "1 + 1"}], runtime="javascript", workers=1))
    assert results[0].stdout == "2\n" and results[0].language == "javascript"


def test_dead_worker_is_replaced_and_its_item_retried_once(tmp_path: Path) -> None:
    with run_batch(death_items(tmp_path), workers=1, policy=death_policy(tmp_path)) as run:
        killer, failures = kill_workers_under(run, tmp_path)
        results = list(run)
    killer.join(timeout=60)
    assert not failures, failures
    check_deaths(results)


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        run_batch([], workers=0)
    with pytest.raises(ValueError, match="backend must be 'local' or 'ray'"):
        run_batch([], backend="dask")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ray_address needs backend='ray'"):
        run_batch([], ray_address="ray://x:1")


def test_pass_at_k_is_the_unbiased_estimator() -> None:
    for n, c, k in [(10, 3, 1), (10, 3, 5), (5, 0, 2), (5, 5, 3), (200, 17, 100)]:
        expected = 1.0 if n - c < k else 1 - math.comb(n - c, k) / math.comb(n, k)
        assert estimate_pass_at_k(n, c, k) == pytest.approx(expected)


def test_documented_schemas_match_the_models() -> None:
    schemas = Path(__file__).resolve().parents[1] / "docs" / "schemas"
    for name, schema in json_schemas().items():
        assert (schemas / name).read_text() == schema_text(schema), (
            f"regenerate docs/schemas/{name}"
        )
