"""The structured results of the MCP tools.

Each model becomes a tool's ``outputSchema``, so field descriptions are written for the model
that reads them: they say what a value means and what to do with it, not how it is computed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Language = Literal["python", "javascript"]


class _Output(BaseModel):
    """Frozen: a result describes one moment and is never updated after it is returned."""

    model_config = ConfigDict(frozen=True)


class ExecutionOutput(_Output):
    session_id: str = Field(description="The session that ran the code; pass it to continue.")
    language: Language
    success: bool = Field(description="True when the code finished without an error or limit.")
    stdout: str
    stderr: str = Field(description="Tracebacks and error messages appear here.")
    exit_code: int
    trap_reason: str | None = Field(
        description="Which hard limit stopped the code: timeout, fuel_exhausted, memory_limit, "
        "stack_overflow, guest_exit or guest_crash; null when none did."
    )
    interpreter_restarted: bool = Field(
        description="True when the session's interpreter was replaced, either after this call "
        "(a limit stopped it) or before it (the idle interpreter had been freed): variables, "
        "imports and functions defined earlier are gone, workspace files are kept."
    )
    restart_reason: str | None = Field(
        description="Why the interpreter was replaced, e.g. fuel_exhausted or evicted_idle."
    )
    unsaved_globals: dict[str, str] = Field(
        description="With auto_persist_globals: globals that could not be saved, and why. "
        "They are lost when the interpreter restarts."
    )
    stdout_truncated: bool
    stderr_truncated: bool
    files_created: list[str] = Field(description="Workspace paths this call created.")
    files_modified: list[str] = Field(description="Workspace paths this call changed.")
    duration_ms: float
    fuel_consumed: int = Field(description="WebAssembly instructions the call used.")
    memory_used_bytes: int
    hint: str | None = Field(description="What to change when the call failed.")
    error_guidance: dict[str, Any] | None = Field(
        description="The sandbox's diagnosis of a failure: error_type, message, "
        "actionable_guidance (a list of steps), and the cell line and a corrected example when "
        "known. Its advice to raise a policy limit is for the server operator."
    )
    fuel_analysis: dict[str, Any] | None = Field(
        description="How close the call came to its instruction budget (status, "
        "utilization_percent); warning, critical or exhausted mean: do less per call."
    )


class SessionOutput(_Output):
    session_id: str
    language: Language
    auto_persist_globals: bool = Field(
        description="Whether globals are saved after every call and restored on a restart."
    )
    workspace_path: str = Field(
        description="Where the session's files are inside the sandbox (also the working directory)."
    )
    external_path: str | None = Field(
        description="Read-only directory holding the files the server operator shared, if any."
    )
    idle_timeout_seconds: float = Field(
        description="The session is destroyed after this long without a tool call."
    )


class SessionSummary(_Output):
    session_id: str
    language: Language
    is_default: bool = Field(description="Used by execute_code calls that give no session_id.")
    executions: int
    created_at: str
    last_used_at: str


class SessionListOutput(_Output):
    sessions: list[SessionSummary]
    max_sessions_per_client: int


class DestroyOutput(_Output):
    session_id: str
    destroyed: bool


class RuntimeInfo(_Output):
    language: Language
    interpreter: str
    workspace_path: str
    notes: str


class RuntimeLimits(_Output):
    default_timeout_seconds: float
    max_timeout_seconds: float
    memory_bytes: int
    fuel_budget: int
    stdout_max_bytes: int
    workspace_max_bytes: int = Field(description="Total size a session's files may reach.")
    max_code_bytes: int
    max_file_bytes: int


class RuntimesOutput(_Output):
    runtimes: list[RuntimeInfo]
    limits: RuntimeLimits
    external_path: str | None = Field(
        description="Read-only shared files, when the server has any."
    )
    external_files: list[str]


class PackageInfo(_Output):
    name: str
    description: str


class PackagesOutput(_Output):
    language: Language
    third_party_packages: dict[str, str] = Field(
        description="Importable packages beyond the language itself: name -> version."
    )
    builtins: list[PackageInfo] = Field(description="What the language itself offers.")
    can_install: bool = Field(description="Whether this server installs packages on request.")
    notes: str


class FileEntry(_Output):
    path: str = Field(description="Relative to the workspace; pass it to read_file.")
    size_bytes: int
    modified_at: str


class WorkspaceOutput(_Output):
    session_id: str
    language: Language
    workspace_path: str
    files: list[FileEntry]
    file_count: int
    total_bytes: int
    executions: int
    created_at: str
    last_used_at: str
    idle_timeout_seconds: float
    auto_persist_globals: bool


class FileContentOutput(_Output):
    session_id: str
    path: str
    encoding: Literal["utf-8", "base64"]
    content: str
    size_bytes: int


class FileWrittenOutput(_Output):
    session_id: str
    path: str
    sandbox_path: str = Field(description="The absolute path code in the session opens.")
    size_bytes: int


class ResetOutput(_Output):
    session_id: str
    files_deleted: int


class LatencySummary(_Output):
    p50_ms: float | None
    p95_ms: float | None
    samples: int = Field(description="How many recent execute_code calls the percentiles cover.")


class MetricsOutput(_Output):
    executions: int
    succeeded: int
    failed: int
    failures_by_reason: dict[str, int] = Field(
        description="Failed executions by cause: a trap reason, or 'error' for code that raised."
    )
    executions_by_language: dict[str, int]
    latency: LatencySummary
    rejected_calls: dict[str, int] = Field(
        description="Tool calls refused before running, by cause (rate_limit, code_too_large ...)."
    )
    live_sessions: int
    sessions_created: int
    sessions_expired: int
    uptime_seconds: float
