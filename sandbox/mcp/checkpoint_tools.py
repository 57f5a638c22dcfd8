"""The checkpoint tools: checkpoint_session, restore_session, undo_last_cell, fork_session.

A model exploring with code can mark a good point, go back to it, take back the last cell
(also after a cell that hit a limit), or try two approaches side by side in a fork. They act
on the caller's own sessions only, under the same ownership rules as every session tool
(``session_registry.py``), and a fork counts against the caller's session cap. Checkpoints
live as long as the session's interpreter object: a detach or a server restart keeps the
session's last state (it is saved and resumed) but not its list of checkpoints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field

from sandbox.core.errors import CheckpointError
from sandbox.mcp.descriptions import ToolEntry, tool_hints
from sandbox.mcp.file_tools import SessionId
from sandbox.mcp.models import Language, language_of
from sandbox.mcp.session_registry import SessionRegistry
from sandbox.mcp.strict_arguments import strict
from sandbox.sessions.checkpoints import Checkpoint
from sandbox.sessions.sandbox import Sandbox

if TYPE_CHECKING:
    from sandbox.mcp.tools import SandboxTools

CHECKPOINT_SESSION = """\
Save the session's current state (variables, functions, classes, imports and workspace \
files) as a checkpoint to return to with restore_session. Python saves the interpreter's \
memory (milliseconds); JavaScript records the cells run so far and replays them on restore. \
Returns the checkpoint id and every checkpoint the session holds.\
"""
RESTORE_SESSION = """\
Return a session to a checkpoint made by checkpoint_session (by its id or label): its \
variables and, unless keep_files=true, its workspace files are as they were then. The \
checkpoint stays, so you can return to it again.\
"""
UNDO_LAST_CELL = """\
Take back the last execute_code call in a session: variables and (unless keep_files=true) \
files return to how they were before it, also after a call that hit a limit and restarted \
the interpreter. One step only.\
"""
FORK_SESSION = """\
Copy a session into a new one with the same variables and a copy of its files, to try \
another approach without touching the original; the two are independent. Returns the new \
session_id; it counts against your session limit, destroy it when done.\
"""
KeepFiles = Annotated[
    bool, Field(description="Leave the workspace files as they are now; only go back in code.")
]


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True)


class CheckpointInfo(_Output):
    checkpoint_id: str
    label: str | None
    age_seconds: float
    size_bytes: int = Field(
        description="Host-side bytes it holds (interpreter, files and bookkeeping)."
    )
    replay_cells: int = Field(description="Cells a JavaScript restore re-runs; 0 for Python.")
    automatic: bool = Field(description="The point undo_last_cell returns to.")


class CheckpointsOutput(_Output):
    session_id: str
    checkpoint: CheckpointInfo | None = Field(description="The one just made, if any.")
    checkpoints: list[CheckpointInfo]


class ForkOutput(_Output):
    session_id: str = Field(description="The new session.")
    forked_from: str
    language: Language


def _info(checkpoint: Checkpoint) -> CheckpointInfo:
    return CheckpointInfo(
        checkpoint_id=checkpoint.id,
        label=checkpoint.label,
        age_seconds=round(checkpoint.age_seconds, 3),
        size_bytes=checkpoint.size_bytes,
        replay_cells=checkpoint.replay_cells,
        automatic=checkpoint.automatic,
    )


class CheckpointTools:
    """The four checkpoint tools of one server."""

    def __init__(self, tools: SandboxTools, registry: SessionRegistry) -> None:
        self._tools = tools
        self._registry = registry

    def tools(self) -> list[Tool]:
        return [
            strict(Tool.from_function(function, description=description, annotations=hints))
            for function, description, hints in self.catalogue()
        ]

    def catalogue(self) -> list[ToolEntry]:
        return [
            (self.checkpoint_session, CHECKPOINT_SESSION, tool_hints("Checkpoint session")),
            (self.restore_session, RESTORE_SESSION, tool_hints("Restore session")),
            (self.undo_last_cell, UNDO_LAST_CELL, tool_hints("Undo last cell")),
            (self.fork_session, FORK_SESSION, tool_hints("Fork session")),
        ]

    def checkpoint_session(
        self,
        session_id: SessionId,
        ctx: Context[Any, Any],
        label: Annotated[
            str | None,
            Field(min_length=1, max_length=200, description="A name to restore it by."),
        ] = None,
    ) -> Annotated[CallToolResult, CheckpointsOutput]:
        client = self._tools.admit(ctx)
        with self._registry.use(client, session_id, interpreter=True) as live, _refusals():
            assert live.sandbox is not None
            made = live.sandbox.checkpoint(label)
            listing = live.sandbox.checkpoints()
        output = CheckpointsOutput(
            session_id=session_id, checkpoint=_info(made), checkpoints=[_info(c) for c in listing]
        )
        return self._tools.result(
            output,
            f"Checkpoint {made.id}{f' ({label})' if label else ''} of session {session_id}: "
            f"{made.size_bytes} bytes; restore_session returns to it.",
        )

    def restore_session(
        self,
        session_id: SessionId,
        checkpoint: Annotated[
            str,
            Field(min_length=1, max_length=200, description="A checkpoint_id or label."),
        ],
        ctx: Context[Any, Any],
        keep_files: KeepFiles = False,
    ) -> Annotated[CallToolResult, CheckpointsOutput]:
        return self._rewind(
            ctx,
            session_id,
            lambda sandbox: sandbox.restore(checkpoint, keep_files=keep_files),
            f"Session {session_id} is back at checkpoint {checkpoint!r}.",
        )

    def undo_last_cell(
        self, session_id: SessionId, ctx: Context[Any, Any], keep_files: KeepFiles = False
    ) -> Annotated[CallToolResult, CheckpointsOutput]:
        return self._rewind(
            ctx,
            session_id,
            lambda sandbox: sandbox.undo(keep_files=keep_files),
            f"Session {session_id} is back where it was before its last call.",
        )

    def _rewind(
        self,
        ctx: Context[Any, Any],
        session_id: str,
        rewind: Callable[[Sandbox], None],
        summary: str,
    ) -> CallToolResult:
        """Take the session back (a restore or an undo) and list the checkpoints left."""
        client = self._tools.admit(ctx)
        with self._registry.use(client, session_id, interpreter=True) as live, _refusals():
            assert live.sandbox is not None
            rewind(live.sandbox)
            listing = live.sandbox.checkpoints()
        output = CheckpointsOutput(
            session_id=session_id, checkpoint=None, checkpoints=[_info(c) for c in listing]
        )
        return self._tools.result(output, summary)

    def fork_session(
        self, session_id: SessionId, ctx: Context[Any, Any]
    ) -> Annotated[CallToolResult, ForkOutput]:
        client = self._tools.admit(ctx)
        with self._registry.use(client, session_id, interpreter=True) as live, _refusals():
            parent = live.sandbox
            assert parent is not None
            child = self._registry.create(
                client,
                live.language,
                auto_persist_globals=live.auto_persist_globals,
                make=parent.fork,
            )
        output = ForkOutput(
            session_id=child.session_id,
            forked_from=session_id,
            language=language_of(live.language),
        )
        return self._tools.result(
            output,
            f"Forked session {session_id} into {child.session_id}: same variables, a copy "
            "of its files; the two are independent.",
        )


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """Turn a checkpoint the library refuses into the tool error a model can act on."""
    try:
        yield
    except CheckpointError as error:
        raise ToolError(str(error)) from error
