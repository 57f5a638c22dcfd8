"""Per-call limits and the translation of a stopped guest into the limit that stopped it."""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime

from sandbox.core.policy import ExecutionPolicy
from sandbox.core.result import TrapReason
from sandbox.host.guest_tree import TreeScan
from sandbox.host.tool_channel import ToolHandler

# A guest whose memory is within this much of its cap when it fails is taken to have hit it.
_MEMORY_SLACK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class CellLimits:
    """What one execute() call may use; each call of a session gets a fresh set."""

    fuel: int
    timeout_seconds: float
    stdout_max_bytes: int
    stderr_max_bytes: int
    disk_bytes: int  # what the guest may still add to the workspace in this call
    disk_entries: int  # files, directories and links it may still create
    # The host tools this call may use (with their per-cell caps and record), if any.
    tools: ToolHandler | None = None

    @classmethod
    def from_policy(
        cls,
        policy: ExecutionPolicy,
        workspace: TreeScan,
        timeout_seconds: float | None = None,
        tools: ToolHandler | None = None,
    ) -> CellLimits:
        """Limits for one call, with the disk budget left by ``workspace`` as measured now."""
        return cls(
            fuel=policy.fuel_budget,
            timeout_seconds=policy.timeout_seconds if timeout_seconds is None else timeout_seconds,
            stdout_max_bytes=policy.stdout_max_bytes,
            stderr_max_bytes=policy.stderr_max_bytes,
            disk_bytes=max(0, policy.workspace_max_bytes - workspace.used_bytes)
            if workspace.complete
            else 0,
            disk_entries=max(0, policy.workspace_max_files - workspace.entries),
            tools=tools,
        )


def near_memory_limit(memory_bytes: int, memory_limit: int) -> bool:
    return memory_bytes + _MEMORY_SLACK_BYTES >= memory_limit


def classify_stop(error: BaseException, memory_bytes: int, memory_limit: int) -> TrapReason:
    """Name the limit behind an exception that ended a guest's run."""
    if isinstance(error, wasmtime.ExitTrap):
        return TrapReason.GUEST_EXIT
    if isinstance(error, wasmtime.Trap):
        code = error.trap_code
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return TrapReason.FUEL_EXHAUSTED
        if code == wasmtime.TrapCode.INTERRUPT:
            return TrapReason.TIMEOUT
        if code == wasmtime.TrapCode.STACK_OVERFLOW:
            return TrapReason.STACK_OVERFLOW
    if near_memory_limit(memory_bytes, memory_limit):
        return TrapReason.MEMORY_LIMIT
    return TrapReason.GUEST_CRASH
