"""What every batch worker does once, before its first item, so that no item pays for it."""

from __future__ import annotations

from typing import Any

from sandbox.batch.item_runner import run_item
from sandbox.batch.models import BatchItem
from sandbox.core.runtime_type import RuntimeType
from sandbox.runtimes import runtime_for

_HELLO = {RuntimeType.PYTHON: "pass", RuntimeType.JAVASCRIPT: "0"}


def warm_up(runtime: RuntimeType, base_policy: dict[str, Any]) -> None:
    """Load the compiled runtimes and run one throwaway item of the batch's own runtime.

    Loading the compiled module (341 MB for Python) and the first instantiation are the slow
    parts of a sandbox's first use; the other runtime is loaded too, for mixed batches.
    """
    for kind in RuntimeType:
        runtime_for(kind).prepare()
    run_item(BatchItem(id="warm-up", code=_HELLO[runtime]), runtime, base_policy, "warm-up")
