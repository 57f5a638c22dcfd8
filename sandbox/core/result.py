"""SandboxResult: everything one execute() call produced, in a form an LLM or a program can act on."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TrapReason(StrEnum):
    """Why the host stopped a guest; stored in ``metadata["trap_reason"]``."""

    FUEL_EXHAUSTED = "fuel_exhausted"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    STACK_OVERFLOW = "stack_overflow"
    GUEST_EXIT = "guest_exit"
    GUEST_CRASH = "guest_crash"
    CANCELLED = "cancelled"  # Sandbox.cancel(), a cancelled task, or an MCP cancellation


class SandboxResult(BaseModel):
    """Outcome of one execute() call. Guest failures are reported here, never raised."""

    model_config = ConfigDict(frozen=True)

    # Only success and workspace_path are required, as in 0.4.x, so callers can build
    # results (in tests, or for their own failures) without naming every field.
    success: bool
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    fuel_consumed: int = 0
    memory_used_bytes: int = 0
    duration_ms: float = 0.0
    files_created: list[str] = Field(default_factory=list)
    files_modified: list[str] = Field(default_factory=list)
    workspace_path: str
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def trap_reason(self) -> TrapReason | None:
        """The limit that stopped the guest, if one did."""
        reason = self.metadata.get("trap_reason")
        return TrapReason(reason) if reason else None
