"""ServerLimits: the caps that keep one shared MCP server usable for all of its clients.

The ExecutionPolicy bounds one execution; these bound what clients can pile up around
executions: live interpreters (each holds tens of MiB), request sizes, and call rates.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

_KIB = 1024
_MIB = 1024 * _KIB


class ServerLimits(BaseModel):
    """Per-server caps; the defaults suit a workstation serving a handful of agents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_sessions: int = Field(default=32, gt=0, description="Live sessions across all clients.")
    max_sessions_per_client: int = Field(default=8, gt=0)
    session_idle_ttl_seconds: float = Field(
        default=900.0, gt=0, description="A session unused this long is destroyed."
    )
    max_code_bytes: int = Field(default=256 * _KIB, gt=0, description="UTF-8 size of one cell.")
    max_file_bytes: int = Field(
        default=2 * _MIB, gt=0, description="Largest file read_file returns or write_file takes."
    )
    max_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    calls_per_minute: int = Field(default=120, gt=0, description="Sustained tool calls per client.")
    burst_calls: int = Field(default=30, gt=0, description="Tool calls a client may make at once.")
    max_request_body_bytes: int = Field(default=8 * _MIB, gt=0, description="HTTP request cap.")

    @model_validator(mode="after")
    def _check_consistency(self) -> ServerLimits:
        if self.max_sessions_per_client > self.max_sessions:
            raise ValueError(
                f"max_sessions_per_client ({self.max_sessions_per_client}) cannot exceed "
                f"max_sessions ({self.max_sessions})"
            )
        return self
