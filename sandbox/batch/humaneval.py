"""HumanEval scoring: completions become batch items, results become pass@k.

The program for a completion is the reference harness's: prompt + completion + test +
``check(entry_point)``, run in a fresh sandbox (3 s deadline, as the reference uses); it
passes when it exits 0 without a limit stop. pass@k is the unbiased estimator of the Codex
paper, 1 - C(n-c, k) / C(n, k), averaged over tasks, reported for the k every task has enough
samples for (as the reference does).
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sandbox.batch.models import BatchItem, BatchResult

REFERENCE_TIMEOUT_SECONDS = 3.0


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file, gzip-compressed when its name ends in .gz."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None


def program(problem: dict[str, Any], completion: str) -> str:
    return (
        f"{problem['prompt']}{completion}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"
    )


def completion_items(
    problems: dict[str, dict[str, Any]],
    completions: Iterable[dict[str, Any]],
    timeout_seconds: float = REFERENCE_TIMEOUT_SECONDS,
) -> Iterator[BatchItem]:
    """One item per completion, its id ``<task_id>#<sample number>``."""
    counts: dict[str, int] = defaultdict(int)
    for record in completions:
        task_id = record.get("task_id")
        if task_id not in problems:
            raise ValueError(f"completion for unknown task_id {task_id!r}")
        completion = record.get("completion")
        if not isinstance(completion, str):
            raise ValueError(f"completion for {task_id} must be a string")
        sample = counts[task_id]
        counts[task_id] += 1
        yield BatchItem(
            id=f"{task_id}#{sample}",
            code=program(problems[task_id], completion),
            policy={"timeout_seconds": timeout_seconds},
        )


def estimate_pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k), as a product (no huge binomials)."""
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def task_of(item_id: str) -> str:
    return item_id.rsplit("#", 1)[0]


def score(results: Iterable[BatchResult], ks: Iterable[int]) -> dict[str, Any]:
    """pass@k over tasks, plus each task's sample and pass counts."""
    samples: dict[str, int] = defaultdict(int)
    passed: dict[str, int] = defaultdict(int)
    for result in results:
        task = task_of(result.id)
        samples[task] += 1
        passed[task] += result.success
    usable = [k for k in sorted(set(ks)) if samples and all(n >= k for n in samples.values())]
    pass_at = {
        f"pass@{k}": sum(estimate_pass_at_k(samples[t], passed[t], k) for t in samples)
        / len(samples)
        for k in usable
    }
    tasks = {t: {"samples": samples[t], "passed": passed[t]} for t in sorted(samples)}
    return {**pass_at, "tasks": tasks}
