"""The policy the CLI's --timeout and --memory options ask for, shared by `run` and `batch`."""

from __future__ import annotations

import typer

from sandbox.core.policy import ExecutionPolicy

MIB = 1024 * 1024


def policy_from_options(timeout: float | None, memory_mib: int | None) -> ExecutionPolicy:
    """The configured defaults with the options given; a bad value is a usage error."""
    overrides: dict[str, object] = {}
    if timeout is not None:
        overrides["timeout_seconds"] = timeout
    if memory_mib is not None:
        overrides["memory_bytes"] = memory_mib * MIB
    try:
        return ExecutionPolicy.model_validate(overrides)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
