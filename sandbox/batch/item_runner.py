"""Run one BatchItem in a fresh sandbox: the only code a batch worker executes per item.

Whatever the item holds (a bad policy, a file name that escapes, a guest that loops or
exhausts its memory), the outcome is a BatchResult; the worker survives to take the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from sandbox.batch.models import STDIN_FILE, BatchItem, BatchResult, describe_errors
from sandbox.core.errors import SandboxError
from sandbox.core.policy import ExecutionPolicy
from sandbox.core.runtime_type import RuntimeType
from sandbox.factory import create_sandbox
from sandbox.sessions.files import delete_session_workspace
from sandbox.sessions.sandbox import Sandbox

# Python reads stdin from the item's input file; one cell before the item's own, so the
# item's line numbers and namespace stay its own (the expression binds no name).
_PYTHON_STDIN_CELL = "__import__('sys').stdin = open({path!r}, encoding='utf-8')"


def item_policy(base: dict[str, Any], overrides: dict[str, Any]) -> ExecutionPolicy:
    """The batch policy with the item's overrides; a bad field raises PolicyValidationError."""
    return ExecutionPolicy.model_validate({**base, **overrides})


def run_item(
    item: BatchItem,
    runtime: RuntimeType,
    base_policy: dict[str, Any],
    worker: str,
    on_session: Callable[[str], None] | None = None,
) -> BatchResult:
    """``on_session`` learns the item's session id first, so that whoever watches the worker
    can remove the session if the worker dies before it does."""
    started = time.perf_counter()
    language = item.language or runtime

    def failed(error: str) -> BatchResult:
        elapsed = (time.perf_counter() - started) * 1000
        return BatchResult(
            id=item.id,
            success=False,
            language=language,
            error=error,
            duration_ms=elapsed,
            worker=worker,
        )

    try:
        policy = item_policy(base_policy, item.policy)
    except ValidationError as error:
        return failed(f"invalid policy: {describe_errors(error)}")
    try:
        sandbox = create_sandbox(language, policy)
    except SandboxError as error:
        return failed(f"sandbox could not start: {error}")
    if on_session is not None:
        on_session(sandbox.session_id)
    kept: str | None = None
    try:
        with sandbox:
            problem = _place_inputs(sandbox, item)
            if problem:
                return failed(problem)
            result = sandbox.execute(item.code)
        if item.keep_workspace:
            kept = str(sandbox.workspace_path)
    finally:
        if not item.keep_workspace:
            delete_session_workspace(sandbox.session_id)
    return BatchResult(
        id=item.id,
        success=result.success,
        language=language,
        stdout=result.stdout,
        stderr=result.stderr,
        exit_code=result.exit_code,
        trap_reason=result.trap_reason.value if result.trap_reason else None,
        duration_ms=(time.perf_counter() - started) * 1000,
        fuel_consumed=result.fuel_consumed,
        worker=worker,
        workspace_path=kept,
    )


def _place_inputs(sandbox: Sandbox, item: BatchItem) -> str | None:
    """Write the item's files and input into its workspace; the reason if that failed."""
    workspace = sandbox.workspace_path
    files = dict(item.files)
    if item.stdin is not None:
        files[STDIN_FILE] = item.stdin
    for name, text in files.items():
        target = workspace / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as error:
            return f"cannot write file {name!r} into the workspace: {error.strerror}"
    if item.stdin is not None and sandbox.runtime is RuntimeType.PYTHON:
        path = f"{sandbox.policy.guest_mount_path}/{STDIN_FILE}"
        setup = sandbox.execute(_PYTHON_STDIN_CELL.format(path=path))
        if not setup.success:
            return f"could not open the input as sys.stdin: {setup.stderr.strip()[-500:]}"
    return None
