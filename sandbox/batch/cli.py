"""``llm-wasm-sandbox batch`` and ``llm-wasm-sandbox eval humaneval`` (registered in sandbox/cli.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from sandbox.batch import humaneval, jsonl
from sandbox.batch.dispatch import Backend, run_batch
from sandbox.batch.models import BatchItem, BatchResult
from sandbox.cli_policy import policy_from_options
from sandbox.core.runtime_type import RuntimeType

WorkersOption = Annotated[
    int | None, typer.Option("--workers", min=1, help="Worker processes (default: usable cores).")
]
RayOption = Annotated[
    bool, typer.Option("--ray", help="Run the workers as Ray actors (a local Ray by default).")
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        metavar="ADDRESS",
        help="Join the Ray cluster at ADDRESS (e.g. ray://head:10001); implies --ray.",
    ),
]


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} items/s" if speed else "- items/s", style="progress.data.speed")


def _ray_args(ray: bool, address: str | None) -> tuple[Backend, str | None]:
    return ("ray" if ray or address else "local"), address


def _run_with_progress(
    items: Iterable[BatchItem | Mapping[str, Any]],
    total: int,
    on_result: Callable[[BatchResult], None],
    rejected: list[BatchResult] | None = None,
    **batch: Any,
) -> tuple[int, int]:
    """Run the batch with a progress bar on stderr; (done, failed).

    ``rejected`` collects input lines the reader could not turn into items (while the batch
    pulls items); they are reported and counted as they appear.
    """
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    done = failed = 0
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task("batch", total=total, failed=0)
        pending = rejected if rejected is not None else []

        def report(result: BatchResult) -> None:
            nonlocal done, failed
            on_result(result)
            done += 1
            failed += not result.success
            progress.update(bar, advance=1, failed=failed)

        with run_batch(items, **batch) as results:
            for result in results:
                while pending:
                    report(pending.pop(0))
                report(result)
        while pending:
            report(pending.pop(0))
    return done, failed


def batch(
    items: Annotated[Path, typer.Argument(help="JSONL of BatchItem (docs/batch.md).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL of BatchResult.")],
    workers: WorkersOption = None,
    ray: RayOption = False,
    ray_address: RayAddressOption = None,
    lang: Annotated[
        RuntimeType, typer.Option("--lang", help="Language of items that name none.")
    ] = RuntimeType.PYTHON,
    timeout: Annotated[float | None, typer.Option(help="Per-item deadline, seconds.")] = None,
    memory: Annotated[int | None, typer.Option(help="Per-item memory limit, MiB.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip the ids already in OUTPUT; append the rest.")
    ] = False,
) -> None:
    """Run every item of ITEMS in a fresh sandbox; results are appended to OUTPUT as they finish."""
    if not items.is_file():
        raise typer.BadParameter(f"{items} is not a readable file")
    policy = policy_from_options(timeout, memory)  # before OUTPUT exists: a usage error makes none
    if output.exists() and output.stat().st_size and not resume:
        raise typer.BadParameter(
            f"{output} already holds results: pass --resume to skip those ids, or remove it"
        )
    done_ids = jsonl.finished_ids(output) if resume else set()
    total = max(0, jsonl.count_lines(items) - len(done_ids))
    backend, address = _ray_args(ray, ray_address)
    writer = jsonl.ResultWriter(output, append=resume)
    try:
        rejected: list[BatchResult] = []
        records = jsonl.read_items(items, done_ids, rejected.append)
        done, failed = _run_with_progress(
            records,
            total,
            writer.write,
            rejected,
            runtime=lang,
            policy=policy,
            workers=workers,
            backend=backend,
            ray_address=address,
        )
    finally:
        writer.close()
    typer.echo(f"{done} items run ({failed} failed); results in {output}", err=True)


eval_app = typer.Typer(help="Score model completions against a benchmark's tests.")


@eval_app.callback()
def _eval() -> None:
    """Keep `humaneval` a named sub-command."""


@eval_app.command("humaneval")
def eval_humaneval(
    problems: Annotated[Path, typer.Argument(help="HumanEval problems (.jsonl or .jsonl.gz).")],
    completions: Annotated[Path, typer.Argument(help="JSONL of {task_id, completion}.")],
    k: Annotated[str, typer.Option("-k", help="Comma-separated k values.")] = "1,10,100",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write each sample's BatchResult here.")
    ] = None,
    workers: WorkersOption = None,
    ray: RayOption = False,
    ray_address: RayAddressOption = None,
    timeout: Annotated[
        float, typer.Option(help="Per-sample deadline (the reference harness uses 3 s).")
    ] = humaneval.REFERENCE_TIMEOUT_SECONDS,
) -> None:
    """Run each completion against its problem's tests; print pass@k and per-task counts (JSON)."""
    try:
        ks = [int(value) for value in k.split(",") if value.strip()]
    except ValueError:
        raise typer.BadParameter(f"-k must be comma-separated integers, got {k!r}") from None
    if not ks or min(ks) < 1:
        raise typer.BadParameter(f"-k values must be positive integers, got {k!r}")
    try:
        by_task = {p["task_id"]: p for p in humaneval.read_jsonl(problems)}
        records = list(humaneval.read_jsonl(completions))
        items = list(humaneval.completion_items(by_task, records, timeout))
    except (OSError, ValueError, KeyError) as error:
        raise typer.BadParameter(str(error)) from None
    results: list[BatchResult] = []
    writer = jsonl.ResultWriter(output, append=False) if output else None
    backend, address = _ray_args(ray, ray_address)

    def keep(result: BatchResult) -> None:
        results.append(result)
        if writer:
            writer.write(result)

    try:
        _run_with_progress(
            items, len(items), keep, workers=workers, backend=backend, ray_address=address
        )
    finally:
        if writer:
            writer.close()
    json.dump(humaneval.score(results, ks), sys.stdout, indent=2)
    sys.stdout.write("\n")
