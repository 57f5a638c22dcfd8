"""The MCP tools: what a model can do with the sandbox, and how each call is policed.

Tools are plain synchronous methods: the SDK runs them on worker threads, which is what the
blocking Sandbox API needs, and their typed parameters become precise JSON schemas. Every
result carries structured content (checked against an output schema) and a text block a
model can read directly. Failures are raised as ToolError with a message that says what to do
next, which the SDK turns into an MCP tool error instead of a protocol failure.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from sandbox.core.errors import SandboxError, SessionNotFoundError, WorkspacePathError
from sandbox.core.policy import ExecutionPolicy
from sandbox.core.result import SandboxResult, TrapReason
from sandbox.core.runtime_type import RuntimeType
from sandbox.mcp.external_files import EXTERNAL_GUEST_PATH
from sandbox.mcp.identity import client_key
from sandbox.mcp.limits import ServerLimits
from sandbox.mcp.metrics import Metrics
from sandbox.mcp.models import (
    DestroyOutput,
    ExecutionOutput,
    FileContentOutput,
    FileEntry,
    FileWrittenOutput,
    Language,
    MetricsOutput,
    PackageInfo,
    PackagesOutput,
    ResetOutput,
    RuntimeInfo,
    RuntimeLimits,
    RuntimesOutput,
    SessionListOutput,
    SessionOutput,
    SessionSummary,
    WorkspaceOutput,
)
from sandbox.mcp.rate_limit import RateLimiter
from sandbox.mcp.session_registry import LiveSession, SessionRegistry
from sandbox.runtimes import runtime_for
from sandbox.sessions import changes
from sandbox.sessions.files import list_session_files, read_session_file, write_session_file
from sandbox.sessions.packages import list_available_packages

FileEncoding = Annotated[
    Literal["utf-8", "base64"],
    Field(description="'utf-8' for text, 'base64' for binary data such as images or archives."),
]
SessionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description="A session_id returned by create_session or execute_code.",
    ),
]
WorkspacePath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        description="Path relative to the session workspace, e.g. 'data/input.csv'. No '..', "
        "no leading '/'.",
    ),
]

_LANGUAGES: dict[RuntimeType, Language] = {
    RuntimeType.PYTHON: "python",
    RuntimeType.JAVASCRIPT: "javascript",
}
_HINTS = {
    TrapReason.TIMEOUT: "The code ran past its {timeout:g} s deadline. Make it faster, work on "
    "less data per call, or pass a larger timeout_seconds (at most {max_timeout:g}).",
    TrapReason.FUEL_EXHAUSTED: "The code used up its instruction budget: usually an endless "
    "loop, otherwise too much work for one call. Fix the loop or split the work over calls.",
    TrapReason.MEMORY_LIMIT: "The code needed more than the {memory_mib} MiB memory limit. "
    "Process data in chunks or streams instead of loading it all at once.",
    TrapReason.STACK_OVERFLOW: "Recursion went too deep. Rewrite it as a loop.",
    TrapReason.GUEST_EXIT: "The interpreter itself exited (for example os._exit()); "
    "use sys.exit() or plain returns to end a cell.",
    TrapReason.GUEST_CRASH: "The interpreter crashed. Simplify the code; if it persists, "
    "call reset_workspace.",
}
_RESTARTED = (
    "The interpreter was restarted: variables, functions and imports are gone (re-run the "
    "cells that defined them); workspace files are kept."
)
_RESTORED = (
    "The interpreter was restarted: the globals saved by auto_persist_globals come back, any "
    "listed in unsaved_globals are gone; workspace files are kept."
)

_PYTHON_MODULES = (
    ("json, csv, sqlite3", "Read and write structured data; sqlite3 works on workspace files."),
    ("re, string, textwrap, difflib", "Text processing."),
    ("math, statistics, decimal, fractions, random", "Numbers and statistics."),
    ("datetime, time, calendar", "Dates and times (the clock is real, the timezone is UTC)."),
    ("collections, itertools, functools, heapq, bisect", "Data structures and iteration."),
    ("dataclasses, typing, enum, abc", "Types and classes."),
    ("pathlib, os, shutil, glob, tempfile, io", "Files; only the workspace is writable."),
    ("hashlib, base64, zlib, gzip, bz2, zipfile, tarfile, struct, array", "Bytes and archives."),
    ("xml.etree.ElementTree, html, email", "Markup and messages."),
    ("asyncio", "Coroutines (no sockets or subprocesses to wait on)."),
)
_JS_HELPERS = (
    ("readText(path)", "Contents of a text file as a string."),
    ("writeText(path, text)", "Create or replace a text file."),
    ("appendText(path, text)", "Append to a text file."),
    ("readJson(path)", "Parse a JSON file."),
    ("writeJson(path, value, indent = 2)", "Write a value as JSON."),
    ("listDir(path = '.')", "Sorted names in a directory."),
    ("exists(path)", "Whether a file or directory exists."),
    ("makeDir(path)", "Create one directory (its parent must exist)."),
    ("removeFile(path)", "Delete a file."),
    ("console.log / print", "Write to stdout; console.error writes to stderr."),
    ("setTimeout / clearTimeout", "Timers; pending promises are awaited before the call ends."),
    ("std", "QuickJS std module as a global: std.loadFile, std.open, std.getenv, ..."),
    ("os", "QuickJS os module as a global: os.readdir, os.stat, os.rename, os.sleep, ..."),
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
        self._default_timeout = min(policy.timeout_seconds, limits.max_timeout_seconds)

    def register(self, server: MCPServer[Any]) -> None:
        """Add every tool to ``server``, with descriptions stating this server's actual limits."""
        facts = {
            "default_timeout": self._default_timeout,
            "max_timeout": self._limits.max_timeout_seconds,
            "max_code_kib": self._limits.max_code_bytes // 1024,
            "max_file_kib": self._limits.max_file_bytes // 1024,
            "idle_minutes": self._limits.session_idle_ttl_seconds / 60,
            "max_sessions": self._limits.max_sessions_per_client,
            "workspace": self._policy.guest_mount_path,
            "external": (
                f" Read-only shared files are in {EXTERNAL_GUEST_PATH}/ "
                f"({', '.join(self._external_files)})."
                if self._external_files
                else ""
            ),
        }
        for tool, description, hints in self._catalogue():
            server.add_tool(tool, description=description.format(**facts), annotations=hints)

    # --- tools --------------------------------------------------------------------------

    def execute_code(
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
    ) -> Annotated[CallToolResult, ExecutionOutput]:
        started = time.perf_counter()
        client = self._admit(ctx)
        size = len(code.encode("utf-8"))
        if size > self._limits.max_code_bytes:
            raise self._reject(
                "code_too_large",
                f"the code is {size} bytes, over the {self._limits.max_code_bytes}-byte limit. "
                "Split it over several execute_code calls (state persists between them), or "
                "put data in a file with write_file and read it from the code.",
            )
        timeout = self._timeout(timeout_seconds)
        if session_id is None:
            session = self._registry.use_default(client, RuntimeType(language or "python"))
        else:
            session = self._registry.use(client, session_id)
        with session as live:
            if language is not None and live.language.value != language:
                raise ToolError(
                    f"session {live.session_id} runs {live.language.value}, not {language}; "
                    f"omit language, or use a {language} session (omit session_id for your "
                    "default one)"
                )
            try:
                result = live.sandbox.execute(code, timeout_seconds=timeout)
            except SandboxError as error:  # e.g. a replacement interpreter failed to boot
                raise ToolError(
                    f"the {live.language.value} interpreter could not run the code ({error}); "
                    "call reset_workspace or use a new session"
                ) from error
            live.executions += 1
        latency_ms = (time.perf_counter() - started) * 1000
        self._metrics.record_execution(live.language.value, result, latency_ms)
        output = self._execution_output(live, result, timeout)
        call_result = _result(output, _execution_text(output), is_error=not output.success)
        call_result.content.extend(_images(live.session_id, result))
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
    ) -> Annotated[CallToolResult, SessionOutput]:
        client = self._admit(ctx)
        live = self._registry.create(
            client, RuntimeType(language), auto_persist_globals=auto_persist_globals
        )
        output = self._session_output(live)
        return _result(
            output,
            f"Created {language} session {live.session_id}. Pass session_id="
            f"{live.session_id!r} to execute_code and the file tools. Files go in "
            f"{output.workspace_path}; the session ends after "
            f"{output.idle_timeout_seconds:g} s without use or on destroy_session."
            + (
                " Its globals are saved after every call and survive interpreter restarts."
                if auto_persist_globals
                else ""
            ),
        )

    def destroy_session(
        self, session_id: SessionId, ctx: Context[Any, Any]
    ) -> Annotated[CallToolResult, DestroyOutput]:
        client = self._admit(ctx)
        self._registry.destroy(client, session_id)
        return _result(
            DestroyOutput(session_id=session_id, destroyed=True),
            f"Destroyed session {session_id}: its interpreter is stopped and its files deleted.",
        )

    def list_sessions(self, ctx: Context[Any, Any]) -> Annotated[CallToolResult, SessionListOutput]:
        client = self._admit(ctx)
        summaries = [
            SessionSummary(
                session_id=live.session_id,
                language=_language(live.language),
                is_default=is_default,
                executions=live.executions,
                created_at=live.created_at.isoformat(),
                last_used_at=live.last_used_at.isoformat(),
            )
            for live, is_default in self._registry.sessions_of(client)
        ]
        lines = [
            f"{s.session_id}  {s.language}{' (default)' if s.is_default else ''}  "
            f"{s.executions} executions, last used {s.last_used_at}"
            for s in summaries
        ]
        return _result(
            SessionListOutput(
                sessions=summaries, max_sessions_per_client=self._limits.max_sessions_per_client
            ),
            "\n".join(lines) if lines else "You have no sessions; execute_code creates one.",
        )

    def list_runtimes(self, ctx: Context[Any, Any]) -> Annotated[CallToolResult, RuntimesOutput]:
        self._admit(ctx)
        notes = {
            RuntimeType.PYTHON: "CPython compiled to WebAssembly (WASI): the standard library "
            "and a few pure-Python packages (see list_available_packages). "
            "A cell's last expression is printed like in a REPL.",
            RuntimeType.JAVASCRIPT: "QuickJS-NG: ES2023 with top-level await, no Node.js or "
            "browser APIs. File helpers such as readText/writeText are globals.",
        }
        runtimes = [
            RuntimeInfo(
                language=_language(kind),
                interpreter=runtime_for(kind).binary.name,
                workspace_path=self._policy.guest_mount_path,
                notes=notes[kind],
            )
            for kind in RuntimeType
        ]
        output = RuntimesOutput(
            runtimes=runtimes,
            limits=RuntimeLimits(
                default_timeout_seconds=self._default_timeout,
                max_timeout_seconds=self._limits.max_timeout_seconds,
                memory_bytes=self._policy.memory_bytes,
                fuel_budget=self._policy.fuel_budget,
                stdout_max_bytes=self._policy.stdout_max_bytes,
                workspace_max_bytes=self._policy.workspace_max_bytes,
                max_code_bytes=self._limits.max_code_bytes,
                max_file_bytes=self._limits.max_file_bytes,
            ),
            external_path=EXTERNAL_GUEST_PATH if self._external_files else None,
            external_files=self._external_files,
        )
        text = "\n".join(f"{r.language}: {r.interpreter}. {r.notes}" for r in runtimes)
        return _result(
            output,
            f"{text}\nLimits per call: timeout {self._default_timeout:g} s by default (at most "
            f"{self._limits.max_timeout_seconds:g} s), memory "
            f"{self._policy.memory_bytes // (1024 * 1024)} MiB, no network.",
        )

    def list_available_packages(
        self,
        language: Annotated[Language, Field(description="The language to describe.")],
        ctx: Context[Any, Any],
    ) -> Annotated[CallToolResult, PackagesOutput]:
        self._admit(ctx)
        if language == "python":
            output = PackagesOutput(
                language=language,
                third_party_packages=list_available_packages(RuntimeType.PYTHON),
                builtins=[PackageInfo(name=n, description=d) for n, d in _PYTHON_MODULES],
                can_install=False,
                notes="The Python 3.12 standard library plus the pure-Python packages listed "
                "here; import them directly. Compiled packages (numpy, pandas, scipy, lxml, "
                "matplotlib) cannot run in WebAssembly, and this server installs nothing. Not "
                "available either: ssl, ctypes, multiprocessing, lzma, tkinter, readline, "
                "curses; socket and subprocess import but cannot connect or spawn.",
            )
        else:
            output = PackagesOutput(
                language=language,
                third_party_packages={},
                builtins=[PackageInfo(name=n, description=d) for n, d in _JS_HELPERS],
                can_install=False,
                notes="No npm packages and no import of modules by name: use the global "
                "helpers and the std and os objects. Relative paths are resolved against the "
                "workspace.",
            )
        lines = [f"{name} {version}" for name, version in output.third_party_packages.items()]
        lines += [f"{item.name}: {item.description}" for item in output.builtins]
        return _result(output, "\n".join([output.notes, *lines]))

    def get_workspace_info(
        self, session_id: SessionId, ctx: Context[Any, Any]
    ) -> Annotated[CallToolResult, WorkspaceOutput]:
        client = self._admit(ctx)
        with self._registry.use(client, session_id) as live:
            snapshot = changes.snapshot(live.sandbox.workspace_path)
            output = WorkspaceOutput(
                session_id=live.session_id,
                language=_language(live.language),
                workspace_path=self._policy.guest_mount_path,
                files=[
                    FileEntry(
                        path=path,
                        size_bytes=size,
                        modified_at=datetime.fromtimestamp(mtime_ns / 1e9, UTC).isoformat(),
                    )
                    for path, (size, mtime_ns) in sorted(snapshot.items())
                ],
                file_count=len(snapshot),
                total_bytes=sum(size for size, _ in snapshot.values()),
                executions=live.executions,
                created_at=live.created_at.isoformat(),
                last_used_at=live.last_used_at.isoformat(),
                idle_timeout_seconds=self._limits.session_idle_ttl_seconds,
                auto_persist_globals=live.auto_persist_globals,
            )
        listing = "\n".join(f"{f.path}  {f.size_bytes} bytes" for f in output.files)
        return _result(
            output,
            f"{output.language} session {output.session_id}, {output.executions} executions, "
            f"{output.file_count} files ({output.total_bytes} bytes) in "
            f"{output.workspace_path}" + (f":\n{listing}" if listing else "."),
        )

    def read_file(
        self,
        session_id: SessionId,
        path: WorkspacePath,
        ctx: Context[Any, Any],
        encoding: FileEncoding = "utf-8",
    ) -> Annotated[CallToolResult, FileContentOutput]:
        client = self._admit(ctx)
        with self._registry.use(client, session_id) as live, _file_errors(path):
            listed = changes.snapshot(live.sandbox.workspace_path).get(_normalised(path))
            if listed is not None:
                self._check_file_size(listed[0], path)
            data = read_session_file(live.session_id, path)
        self._check_file_size(len(data), path)
        if encoding == "base64":
            content = base64.b64encode(data).decode("ascii")
        else:
            try:
                content = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ToolError(
                    f"{path!r} is not UTF-8 text; call read_file again with encoding='base64'"
                ) from None
        output = FileContentOutput(
            session_id=session_id,
            path=path,
            encoding=encoding,
            content=content,
            size_bytes=len(data),
        )
        return _result(output, content)

    def write_file(
        self,
        session_id: SessionId,
        path: WorkspacePath,
        content: Annotated[str, Field(description="The file's complete new contents.")],
        ctx: Context[Any, Any],
        encoding: FileEncoding = "utf-8",
    ) -> Annotated[CallToolResult, FileWrittenOutput]:
        client = self._admit(ctx)
        if encoding == "base64":
            try:
                data = base64.b64decode(content, validate=True)
            except binascii.Error as error:
                raise ToolError(f"content is not valid base64 ({error})") from None
        else:
            data = content.encode("utf-8")
        self._check_file_size(len(data), path)
        with self._registry.use(client, session_id) as live, _file_errors(path):
            files = changes.snapshot(live.sandbox.workspace_path)
            files.pop(_normalised(path), None)  # the file being replaced does not count
            others = sum(size for size, _ in files.values())
            if others + len(data) > self._policy.workspace_max_bytes:
                raise self._reject(
                    "workspace_full",
                    f"writing {len(data)} bytes would take the workspace past its "
                    f"{self._policy.workspace_max_bytes}-byte quota ({others} bytes are used by "
                    "other files); delete files from code or call reset_workspace first",
                )
            write_session_file(live.session_id, path, data)
        output = FileWrittenOutput(
            session_id=session_id,
            path=path,
            sandbox_path=f"{self._policy.guest_mount_path}/{_normalised(path)}",
            size_bytes=len(data),
        )
        return _result(
            output,
            f"Wrote {len(data)} bytes to {output.sandbox_path}; code in session {session_id} "
            f"can open it as {_normalised(path)!r}.",
        )

    def reset_workspace(
        self, session_id: SessionId, ctx: Context[Any, Any]
    ) -> Annotated[CallToolResult, ResetOutput]:
        client = self._admit(ctx)
        with self._registry.use(client, session_id) as live:
            deleted = len(list_session_files(live.session_id))
            self._registry.reset(live)
        return _result(
            ResetOutput(session_id=session_id, files_deleted=deleted),
            f"Reset session {session_id}: deleted {deleted} files and restarted the interpreter "
            "(variables are gone). The session_id stays valid.",
        )

    def get_metrics(self, ctx: Context[Any, Any]) -> Annotated[CallToolResult, MetricsOutput]:
        self._admit(ctx)
        output = self._metrics.snapshot(live_sessions=self._registry.live_count())
        latency = output.latency
        return _result(
            output,
            f"{output.executions} executions ({output.failed} failed"
            + "".join(f", {n} {why}" for why, n in sorted(output.failures_by_reason.items()))
            + f"); latency p50 {latency.p50_ms} ms, p95 {latency.p95_ms} ms over "
            f"{latency.samples} calls; {output.live_sessions} live sessions.",
        )

    # --- helpers ------------------------------------------------------------------------

    def _catalogue(self) -> list[tuple[Callable[..., CallToolResult], str, ToolAnnotations]]:
        """Each tool with its description and hints; only the sandbox's own state ever changes."""

        def hints(
            title: str, *, read_only: bool = False, destructive: bool = False
        ) -> ToolAnnotations:
            return ToolAnnotations(
                title=title,
                read_only_hint=read_only,
                destructive_hint=destructive,
                open_world_hint=False,
            )

        return [
            (self.execute_code, _EXECUTE_CODE, hints("Run code")),
            (self.create_session, _CREATE_SESSION, hints("Create session")),
            (self.destroy_session, _DESTROY_SESSION, hints("Destroy session", destructive=True)),
            (self.list_sessions, _LIST_SESSIONS, hints("List sessions", read_only=True)),
            (self.list_runtimes, _LIST_RUNTIMES, hints("List runtimes", read_only=True)),
            (self.list_available_packages, _LIST_PACKAGES, hints("List packages", read_only=True)),
            (self.get_workspace_info, _WORKSPACE_INFO, hints("Workspace info", read_only=True)),
            (self.read_file, _READ_FILE, hints("Read file", read_only=True)),
            (self.write_file, _WRITE_FILE, hints("Write file", destructive=True)),
            (self.reset_workspace, _RESET_WORKSPACE, hints("Reset workspace", destructive=True)),
            (self.get_metrics, _GET_METRICS, hints("Server metrics", read_only=True)),
        ]

    def _admit(self, ctx: Context[Any, Any]) -> str:
        """The caller's client key, once the call has passed the client's rate limit."""
        client = client_key(ctx)
        wait = self._limiter.acquire(client)
        if wait > 0:
            raise self._reject(
                "rate_limit",
                f"rate limit reached ({self._limits.burst_calls} calls at once, "
                f"{self._limits.calls_per_minute} per minute); retry in {wait:.1f} s",
            )
        return client

    def _reject(self, reason: str, message: str) -> ToolError:
        self._metrics.record_rejection(reason)
        return ToolError(message)

    def _timeout(self, requested: float | None) -> float:
        if requested is None:
            return self._default_timeout
        if requested > self._limits.max_timeout_seconds:
            raise self._reject(
                "timeout_too_large",
                f"timeout_seconds={requested:g} is over this server's maximum of "
                f"{self._limits.max_timeout_seconds:g}; pass at most that, or split the work",
            )
        return requested

    def _check_file_size(self, size: int, path: str) -> None:
        if size > self._limits.max_file_bytes:
            raise self._reject(
                "file_too_large",
                f"{path!r} is {size} bytes, over the {self._limits.max_file_bytes}-byte limit "
                "for file transfers. Have code summarise, filter or split it into smaller files.",
            )

    def _session_output(self, live: LiveSession) -> SessionOutput:
        return SessionOutput(
            session_id=live.session_id,
            language=_language(live.language),
            auto_persist_globals=live.auto_persist_globals,
            workspace_path=self._policy.guest_mount_path,
            external_path=EXTERNAL_GUEST_PATH if self._external_files else None,
            idle_timeout_seconds=self._limits.session_idle_ttl_seconds,
        )

    def _execution_output(
        self, live: LiveSession, result: SandboxResult, timeout: float
    ) -> ExecutionOutput:
        restarted = bool(result.metadata.get("session_reset"))
        guidance = result.metadata.get("error_guidance")
        hint: str | None = None
        if result.trap_reason is not None:
            # The sandbox's own trap advice names host-side knobs; this one names the tool's.
            hint = _HINTS[result.trap_reason].format(
                timeout=timeout,
                max_timeout=self._limits.max_timeout_seconds,
                memory_mib=self._policy.memory_bytes // (1024 * 1024),
            )
        elif guidance:
            hint = str(guidance.get("message"))
        elif not result.success:
            hint = "The code failed; the error is in stderr."
        if restarted:
            restart = _RESTORED if live.auto_persist_globals else _RESTARTED
            hint = f"{hint} {restart}" if hint else restart
        return ExecutionOutput(
            session_id=live.session_id,
            language=_language(live.language),
            success=result.success,
            stdout=result.stdout,
            stderr=result.stderr,
            exit_code=result.exit_code,
            trap_reason=result.trap_reason.value if result.trap_reason else None,
            interpreter_restarted=restarted,
            restart_reason=str(result.metadata.get("session_reset_reason")) if restarted else None,
            unsaved_globals=result.metadata.get("unsaved_globals") or {},
            stdout_truncated=bool(result.metadata.get("stdout_truncated")),
            stderr_truncated=bool(result.metadata.get("stderr_truncated")),
            files_created=result.files_created,
            files_modified=result.files_modified,
            duration_ms=result.duration_ms,
            fuel_consumed=result.fuel_consumed,
            memory_used_bytes=result.memory_used_bytes,
            hint=hint,
            error_guidance=guidance,
            fuel_analysis=result.metadata.get("fuel_analysis"),
        )


def _result(output: BaseModel, text: str, *, is_error: bool = False) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=output.model_dump(mode="json"),
        is_error=is_error,
    )


_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
}
_MAX_IMAGES = 4
_MAX_IMAGE_BYTES = 2 * 1024 * 1024


def _images(session_id: str, result: SandboxResult) -> list[ImageContent]:
    """Images the call wrote, as image content, so a client can show a plot to its user."""
    images: list[ImageContent] = []
    for entry in result.metadata.get("files", []):
        mime_type = _IMAGE_TYPES.get(PurePosixPath(entry["path"]).suffix.lower())
        if mime_type is None or entry["size_bytes"] > _MAX_IMAGE_BYTES:
            continue
        try:
            data = read_session_file(session_id, entry["path"])
        except (OSError, SandboxError):
            continue  # removed or replaced by a symlink since the call: nothing to show
        images.append(
            ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type=mime_type)
        )
        if len(images) == _MAX_IMAGES:
            break
    return images


def _language(kind: RuntimeType) -> Language:
    return _LANGUAGES[kind]


def _normalised(path: str) -> str:
    return PurePosixPath(path).as_posix()


def _execution_text(output: ExecutionOutput) -> str:
    """What a model reads first: the output itself, then one status line and any advice."""
    parts: list[str] = []
    if output.stdout:
        parts.append(output.stdout.rstrip("\n"))
    if output.stderr:
        parts.append("[stderr]\n" + output.stderr.rstrip("\n"))
    if output.success:
        status = "ok"
    elif output.trap_reason:
        status = f"stopped: {output.trap_reason}"
    else:
        status = f"failed, exit code {output.exit_code}"
    parts.append(
        f"[{status} · {output.language} session {output.session_id} · {output.duration_ms:.0f} ms]"
    )
    for label, paths in (("created", output.files_created), ("modified", output.files_modified)):
        if paths:
            parts.append(f"files {label}: {', '.join(paths)}")
    if output.unsaved_globals:
        unsaved = ", ".join(f"{name} ({why})" for name, why in output.unsaved_globals.items())
        parts.append(f"not persisted: {unsaved}")
    if output.stdout_truncated or output.stderr_truncated:
        parts.append("[output truncated: print less, or write large output to a file]")
    if output.hint:
        parts.append(f"hint: {output.hint}")
    if output.error_guidance and not output.trap_reason:
        parts.extend(f"- {step}" for step in output.error_guidance.get("actionable_guidance", []))
        if example := output.error_guidance.get("example"):
            parts.append(f"example:\n{example}")
    return "\n".join(parts)


@contextlib.contextmanager
def _file_errors(path: str) -> Iterator[None]:
    """Turn the host's file errors into messages that tell the model what to try instead."""
    try:
        yield
    except (WorkspacePathError, SessionNotFoundError) as error:
        raise ToolError(str(error)) from None
    except FileNotFoundError:
        raise ToolError(
            f"no file {path!r} in the workspace; get_workspace_info lists the files"
        ) from None
    except IsADirectoryError:
        raise ToolError(f"{path!r} is a directory; pass the path of a file") from None
    except OSError as error:
        raise ToolError(f"cannot access {path!r}: {error.strerror or error}") from None


_EXECUTE_CODE = """\
Run Python 3.12 or JavaScript (QuickJS-NG) code in an isolated WebAssembly sandbox and return \
its stdout, stderr and the workspace files it created or changed.

Each session keeps a live interpreter, so variables, functions and imports persist between \
calls to the same session, like notebook cells. Without session_id the code runs in your \
default session for the language, created on first use; its session_id is in the result. \
The working directory is the session workspace {workspace}, so relative paths work; move \
files in and out with write_file and read_file.{external}

Python: the standard library plus the pure-Python packages list_available_packages names \
(no numpy or pandas); a cell's last expression is printed. JavaScript: print with \
console.log, top-level await works, file helpers (readText, writeText, readJson, ...) are \
globals. There is no network and no subprocesses.

Limits: code up to {max_code_kib} KiB; each call stops after timeout_seconds (default \
{default_timeout:g}, at most {max_timeout:g}) or when it exhausts its memory or instruction \
budget. Then success is false, trap_reason names the limit, hint says what to change, and \
the interpreter restarts: variables are lost unless the session was created with \
auto_persist_globals, files are kept. A raised exception also gives success false, with the \
traceback in stderr.\
"""
_CREATE_SESSION = """\
Start a new, empty session with its own interpreter and workspace and return its session_id. \
Use it to keep separate pieces of work apart; for a single task execute_code's default \
session is enough. Pass auto_persist_globals=true when state must survive interpreter \
restarts: globals are then saved after every call and restored after a limit stop. You may \
hold up to {max_sessions} sessions; a session is destroyed after {idle_minutes:g} minutes \
without use.\
"""
_DESTROY_SESSION = """\
Stop a session's interpreter and delete its workspace files. Read any files you still need \
first; the session_id is invalid afterwards.\
"""
_LIST_SESSIONS = """\
List your live sessions (id, language, whether it is your default for execute_code, use \
counts). Use it to recover a session_id you lost track of.\
"""
_LIST_RUNTIMES = """\
Describe the languages the sandbox runs (interpreter versions, workspace path) and the \
limits every execution is under (timeout, memory, instruction budget, code and file sizes).\
"""
_LIST_PACKAGES = """\
List what code can import: for Python the bundled pure-Python packages with their versions \
(e.g. openpyxl, pypdf, jinja2, pyyaml, tabulate) and highlights of the standard library, for \
JavaScript the built-in file helpers and the QuickJS std and os objects. Call it before \
relying on a library; nothing can be installed through this server.\
"""
_WORKSPACE_INFO = """\
Show a session's workspace: every file with its size and modification time, totals, and \
the session's language and use counts.\
"""
_READ_FILE = """\
Return the contents of a file from a session's workspace, e.g. a result your code wrote. \
Text is returned as UTF-8; pass encoding='base64' for binary files. Files up to \
{max_file_kib} KiB.\
"""
_WRITE_FILE = """\
Create or replace a file in a session's workspace so code can read it (parent directories \
are created). Pass encoding='base64' with base64 content for binary data. Up to \
{max_file_kib} KiB.\
"""
_RESET_WORKSPACE = """\
Give a session a clean slate: delete every file and directory in its workspace and restart \
its interpreter (variables are lost). The session_id stays valid.\
"""
_GET_METRICS = """\
Server-wide statistics: executions, failures by cause (timeout, fuel_exhausted, \
memory_limit, error ...), execute_code latency p50/p95, refused calls and live sessions.\
"""
