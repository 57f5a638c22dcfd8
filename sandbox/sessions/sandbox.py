"""Sandbox: one session, i.e. a workspace plus the live interpreter that runs its cells."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import warnings
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from types import TracebackType

from sandbox.core.errors import CheckpointError, SandboxClosedError
from sandbox.core.policy import ExecutionPolicy
from sandbox.core.result import SandboxResult, TrapReason
from sandbox.core.runtime_type import RuntimeType
from sandbox.host.control import CellControl, OutputCallback
from sandbox.host.guest import CELL_ACTIVITY, BootSpec, CellRun, LiveGuest
from sandbox.host.limits import CellLimits
from sandbox.sessions import (
    async_calls,
    changes,
    logs,
    metadata,
    persisted_globals,
    result_details,
)
from sandbox.sessions.checkpoints import Checkpoint, SessionState
from sandbox.sessions.registry import LIVE_SESSIONS
from sandbox.sessions.sandbox_logger import SandboxLogger
from sandbox.tools.cell import CellTools, ToolLimits
from sandbox.tools.registry import HostTool


class Sandbox:
    """Runs code in one session. Consecutive execute() calls share one live interpreter.

    Calls on one Sandbox are serialised; separate Sandboxes run in parallel threads (wasmtime
    releases the GIL while guest code runs). When a call is stopped by a limit the interpreter
    is discarded and a fresh one boots for the next call; workspace files survive.
    """

    def __init__(
        self,
        *,
        runtime: RuntimeType,
        policy: ExecutionPolicy,
        session_id: str,
        workspace: Path,
        spec: BootSpec,
        guest: LiveGuest | None,
        session_dir: Path | None = None,
        logger: SandboxLogger | None = None,
        spawn: Callable[[], Sandbox] | None = None,
        tools: dict[str, HostTool] | None = None,
        named: bool = False,
    ) -> None:
        self.runtime = runtime
        self.policy = policy
        self.session_id = session_id
        self.workspace_path = workspace
        # Host-only files (session.json, logs): beside the workspace, or elsewhere in 0.4's layout.
        self.session_dir = session_dir if session_dir is not None else workspace.parent
        self._logger = logger
        self._spec = spec
        self._guest = guest
        self._lock = threading.Lock()
        self._closed = False
        self._evicted: str | None = None
        self._restored: str | None = None
        self._previous_call_reset = False
        # Opens a new session like this one, without an interpreter: what fork() fills.
        self._spawn = spawn
        # Opened by a chosen session id, so meant to be reopened: close() keeps its state.
        self._named = named
        self._state = SessionState(
            spec=spec, policy=policy, workspace=workspace, session_dir=self.session_dir
        )
        self._tools = dict(tools or {})
        # Capped just past the file limit: a bigger tree is over quota whatever it holds.
        self._view = changes.WorkspaceView(workspace, policy.workspace_max_files + 1)
        # The control of the call running now, which cancel() stops.
        self._running: CellControl | None = None

    @property
    def tools(self) -> list[str]:
        """The names of the host tools the guest may call (``create_sandbox(tools=...)``)."""
        return sorted(self._tools)

    @property
    def workspace(self) -> Path:
        """The host directory the guest sees as its workspace (0.4's name of workspace_path)."""
        return self.workspace_path

    def validate_code(self, code: str) -> bool:
        """Whether ``code`` compiles in this sandbox's guest, without running any of it.

        The guest's own compiler decides (CPython 3.15 or QuickJS, not the host's Python). It
        takes one short call of the session's interpreter; variables are not touched.
        JavaScript is compiled as a function body, so a cell using top-level ``await`` or
        ``import`` statements is reported as invalid.
        """
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        if self.runtime is RuntimeType.PYTHON:
            check = f"__import__('builtins').compile({code!r}, '<cell>', 'exec') and None"
        else:
            check = f"void new Function({json.dumps(code)})"
        return self.execute(check).success

    def execute(
        self,
        code: str,
        inject_setup: bool | None = None,
        *,
        timeout_seconds: float | None = None,
        on_output: OutputCallback | None = None,
        control: CellControl | None = None,
    ) -> SandboxResult:
        """Run ``code`` in the session's interpreter and report what happened.

        Guest errors and limit stops come back as ``success=False`` with
        ``metadata["trap_reason"]``; only misuse of the host API raises.

        ``on_output(stream, text)`` receives stdout/stderr while the cell runs ("stdout" or
        "stderr", in write order, coalesced to a call per 50 ms or 64 KiB; the output caps
        apply), on the thread running the guest: a slow callback slows the guest, and it must
        not call this sandbox. All of it has arrived before execute() returns. A callback that
        raises is logged and counted (``metadata["output_callback_errors"]``); the cell goes
        on. ``cancel()`` from another thread, or ``control.cancel()`` for a call started with
        ``control`` (which then carries ``on_output``), stops the cell within 100 ms as
        ``trap_reason="cancelled"``, with the output so far; the interpreter is replaced, as
        after a timeout. ``inject_setup`` is
        0.4's switch for the prelude it prepended to every run (Python's ``sys.path`` entry
        for its vendored packages; JavaScript's helpers and ``requireVendor``); here those
        are part of every interpreter and the code runs as written, so it has no effect.
        """
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        if inject_setup is not None:
            _warn_inject_setup(inject_setup)
        if timeout_seconds is not None and not 0 < timeout_seconds <= 3600:
            raise ValueError(f"timeout_seconds must be in (0, 3600], got {timeout_seconds}")
        if control is None:
            control = CellControl(on_output)
        elif on_output is not None:
            raise ValueError("pass on_output to the CellControl, or to execute(), not both")
        if self._logger is not None:
            self._logger.log_execution_start(
                self.runtime.value, self.policy, session_id=self.session_id
            )
        result = self._execute(code, timeout_seconds, control)
        if self._logger is not None:
            self._logger.log_execution_complete(
                result, self.runtime.value, session_id=self.session_id
            )
        return result

    def cancel(self) -> bool:
        """Stop the call running now, from any thread; returns whether one was running.

        The call returns soon after (within 100 ms) with ``trap_reason="cancelled"`` and the
        output it had produced; the next call gets a fresh interpreter (files stay).
        """
        running = self._running
        if running is None:
            return False
        running.cancel()
        return True

    def _execute(
        self, code: str, timeout_seconds: float | None, control: CellControl
    ) -> SandboxResult:
        with self._lock, CELL_ACTIVITY:
            if self._closed:
                raise SandboxClosedError(f"sandbox {self.session_id} is closed; create a new one")
            self._running = control
            try:
                return self._execute_locked(code, timeout_seconds, control)
            finally:
                self._running = None

    def _execute_locked(
        self, code: str, timeout_seconds: float | None, control: CellControl
    ) -> SandboxResult:
        guest = self._live_guest()
        if self.policy.undo_last_cell:
            # A workspace too big to record means no undo for this cell, not a failed call.
            with contextlib.suppress(CheckpointError):
                self._state.take(guest, None, automatic=True)
        measured = self._view.now()
        before = measured.files
        tools = self._cell_tools()
        limits = CellLimits.from_policy(self.policy, measured, timeout_seconds, tools)
        started = time.perf_counter()
        run = (
            guest.run_cell(code, limits, control)
            if not control.cancelled
            else _cancelled_before_start()
        )
        duration_ms = (time.perf_counter() - started) * 1000
        # The quota router notes every call that could change a file; host tools may too.
        rescan = run.workspace_changed or (tools is not None and bool(tools.records))
        after = self._view.after_cell(rescan).files
        created, modified, files = result_details.file_changes(before, after)
        metadata.count_execution(self.session_dir, self.runtime.value)
        details = self._metadata(run, limits)
        if tools is not None:
            details["tool_calls"] = tools.records
            if tools.unrecorded:
                details["tool_calls_unrecorded"] = tools.unrecorded
        details["files"] = files
        stderr = run.stderr.text()
        exit_code = run.exit_code if run.trap is None or run.exit_code > 0 else -1
        reset_now = bool(details.get("session_reset"))
        result_details.add_guidance(
            details,
            run,
            limits,
            runtime=self.runtime.value,
            policy=self.policy,
            stderr=stderr,
            exit_code=exit_code,
            code=code,
            after_a_reset=reset_now or self._previous_call_reset,
        )
        self._previous_call_reset = reset_now
        self._state.after_cell(code, run.guest_alive)
        if not run.guest_alive:
            guest.close()
            self._guest = None
            LIVE_SESSIONS.forget(self)
        else:
            LIVE_SESSIONS.touch(self)
        result = SandboxResult(
            success=run.exit_code == 0 and run.trap is None,
            stdout=run.stdout.text(),
            stderr=stderr,
            exit_code=exit_code,
            fuel_consumed=max(0, run.fuel_consumed),
            memory_used_bytes=run.memory_bytes,
            duration_ms=round(duration_ms, 3),
            files_created=created,
            files_modified=modified,
            workspace_path=str(self.workspace_path),
            metadata=details,
        )
        if self.policy.preserve_logs:
            logs.append(self.session_dir, code, result, self.policy.log_max_bytes)
        return result

    async def aexecute(
        self,
        code: str,
        *,
        timeout_seconds: float | None = None,
        on_output: OutputCallback | None = None,
    ) -> SandboxResult:
        """execute() for asyncio/trio hosts: runs on a worker thread, the event loop stays free.

        Cancelling the awaiting task cancels the cell; the task's cancellation goes on once
        the cell has stopped (within 100 ms), so the sandbox is free again by then.
        """
        return await async_calls.run_cancellable(
            lambda control: self.execute(code, timeout_seconds=timeout_seconds, control=control),
            CellControl(on_output),
        )

    def astream(
        self, code: str, *, timeout_seconds: float | None = None
    ) -> AsyncGenerator[async_calls.OutputEvent | SandboxResult, None]:
        """Run ``code``, yielding OutputEvent(stream, text) as the guest writes, then the result.

        Leaving the loop early (or cancelling the task iterating it) cancels the cell.
        """
        return async_calls.stream(
            lambda control: self.execute(code, timeout_seconds=timeout_seconds, control=control)
        )

    def close(self, *, keep_state: bool | None = None) -> None:
        """Free the interpreter. The workspace stays on disk for a later session_id reopen,
        and with ``keep_state`` (under ``policy.keep_interpreter_state``) so does the
        interpreter's state (~10 ms and a few MB), which the session's next boot resumes.
        By default only sessions opened with a chosen ``session_id`` keep it: a one-shot
        sandbox would pay that for a reopen nobody makes. Without it, a state saved earlier
        (at an eviction) is discarded. Closing again does nothing."""
        if keep_state is None:
            keep_state = self._named
        with self._lock:
            if self._closed:
                return
            self._closed = True
            # The execution count reaches session.json within FLUSH_SECONDS (or at exit), as
            # during the session: writing it here cost a one-shot sandbox a third of its close.
            if not keep_state:
                self._state.discard_saved()
            if self._guest is not None:
                if keep_state:
                    self._state.save(self._guest, "closed")
                self._guest.close()
                self._guest = None
            self._state.close()
            self._view.close()
        LIVE_SESSIONS.forget(self)

    def evict(self, reason: str) -> bool:
        """Free the interpreter (not the workspace) unless a call is running right now; the
        checkpoints' interpreter pages move to disk, so they are freed with it."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._guest is None:
                return False
            self._state.save(self._guest, reason)
            self._state.spill()
            self._guest.close()
            self._guest = None
            self._evicted = reason
        finally:
            self._lock.release()
        LIVE_SESSIONS.forget(self)
        return True

    # --- checkpoints ----------------------------------------------------------------------

    def checkpoint(self, label: str | None = None) -> Checkpoint:
        """Record the session now (interpreter and workspace) to restore() later.

        Checkpoints live as long as this Sandbox and count against
        ``policy.state_budget_bytes``; a ``label`` can name one for restore().
        """
        if label is not None and (not isinstance(label, str) or not 0 < len(label) <= 200):
            raise ValueError(f"label must be a non-empty str of at most 200 chars, got {label!r}")
        with self._lock:
            guest = self._open_guest()
            return self._state.take(guest, label, automatic=False)

    def restore(self, checkpoint: Checkpoint | str, *, keep_files: bool = False) -> None:
        """Return to ``checkpoint`` (a Checkpoint, its id or its label): a new interpreter in
        its state, and its workspace files unless ``keep_files``. The checkpoint stays."""
        with self._lock:
            self._open_guest()
            self._replace_guest(self._state.restore(checkpoint, keep_files=keep_files))

    def undo(self, *, keep_files: bool = False) -> None:
        """Return to the state before the last cell (``policy.undo_last_cell``), files too
        unless ``keep_files``; works after a limit stop as well. One step: it is used up."""
        with self._lock:
            self._open_guest()
            self._replace_guest(self._state.restore(None, keep_files=keep_files))

    def fork(self) -> Sandbox:
        """A new session with this one's interpreter state and a copy of its workspace; the
        two are independent from then on. Close the child when done with it."""
        if self._spawn is None:
            raise CheckpointError("fork() needs a sandbox made by create_sandbox()")
        with self._lock:
            held = self._state.fork_held(self._open_guest())
            child = self._spawn()
            try:
                child._guest = child._state.fork_into(self._state, held)
            except BaseException:
                child.close()
                raise
        LIVE_SESSIONS.touch(child)
        return child

    def checkpoints(self) -> list[Checkpoint]:
        """This session's checkpoints, oldest first (the automatic undo point last)."""
        with self._lock:
            return self._state.listing()

    def delete_checkpoint(self, checkpoint: Checkpoint | str) -> None:
        """Free a checkpoint's share of the state budget."""
        with self._lock:
            self._state.delete(checkpoint)

    def _open_guest(self) -> LiveGuest:
        if self._closed:
            raise SandboxClosedError(f"sandbox {self.session_id} is closed; create a new one")
        return self._live_guest()

    def _replace_guest(self, guest: LiveGuest) -> None:
        old, self._guest = self._guest, guest
        if old is not None:
            old.close()
        self._evicted = None
        LIVE_SESSIONS.touch(self)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        guest = getattr(self, "_guest", None)
        if guest is not None:
            guest.close()

    def _cell_tools(self) -> CellTools | None:
        if not self._tools:
            return None
        policy = self.policy
        limits = ToolLimits(
            policy.tool_max_calls, policy.tool_max_argument_bytes, policy.tool_max_result_bytes
        )
        return CellTools(self._tools, limits)

    def _live_guest(self) -> LiveGuest:
        if self._guest is None or not self._guest.alive:
            self._guest, restored = self._state.boot()
            if restored:
                self._restored, self._evicted = self._evicted or "reopened", None
            elif self._state.refused and not self._evicted:
                self._evicted = "saved_state_refused"
        return self._guest

    def _metadata(self, run: CellRun, limits: CellLimits) -> dict[str, object]:
        """The call's details, and the session's news: a reset, a resumed state, globals."""
        details = result_details.run_details(
            run,
            limits,
            runtime=self.runtime.value,
            session_id=self.session_id,
            memory_limit=self.policy.memory_bytes,
        )
        if self._spec.globals_dir:
            saved, unsaved = persisted_globals.read_report(self.workspace_path)
            details["persisted_globals"] = saved
            details["unsaved_globals"] = unsaved
        if not run.guest_alive:
            # The next call gets a fresh interpreter: variables are gone (unless persisted),
            # workspace files stay.
            details["session_reset"] = True
            details["session_reset_reason"] = run.trap.value if run.trap else "guest_stopped"
        elif self._evicted:
            # This call ran in a fresh interpreter because the old one was evicted.
            details["session_reset"] = True
            details["session_reset_reason"] = self._evicted
        if self._restored:
            # The interpreter was put away (evicted, closed) and resumed from its saved state.
            details["state_restored"] = self._restored
        if self._state.refused:
            details["state_refused"] = self._state.refused
            self._state.refused = None
        self._evicted = self._restored = None
        return details


def _cancelled_before_start() -> CellRun:
    """What a call cancelled while it waited for the sandbox reports: nothing ran."""
    return CellRun(exit_code=-1, trap=TrapReason.CANCELLED, trap_message="cancelled before it ran")


def _warn_inject_setup(inject_setup: object) -> None:
    if not isinstance(inject_setup, bool):
        raise TypeError(f"inject_setup must be a bool, not {type(inject_setup).__name__}")
    warnings.warn(
        "execute(inject_setup=...) has no effect and is deprecated: packages are importable "
        "and the helpers (JavaScript's requireVendor and file helpers) are globals in every "
        "session, and code runs as written either way; omit the argument",
        DeprecationWarning,
        stacklevel=3,
    )


class PythonSandbox(Sandbox):
    """A Python sandbox; what create_sandbox(RuntimeType.PYTHON) returns (0.4's class name)."""


class JavaScriptSandbox(Sandbox):
    """A JavaScript sandbox; what create_sandbox(RuntimeType.JAVASCRIPT) returns (0.4's name)."""


# 0.4's abstract base of both; every sandbox is a Sandbox.
BaseSandbox = Sandbox
