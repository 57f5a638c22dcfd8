"""The MCP tools: what a model can do with the sandbox, and how each call is policed.

Tools are plain synchronous methods: the SDK runs them on worker threads, which is what the
blocking Sandbox API needs, and their typed parameters become precise JSON schemas. Every
result carries structured content (checked against an output schema) and a text block a
model can read directly, and stays under the server's result size (results.py shapes it).
Failures are raised as ToolError with a message that says what to do next, which the SDK
turns into an MCP tool error instead of a protocol failure.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from sandbox.core.errors import SandboxError, SessionNotFoundError, WorkspacePathError
from sandbox.core.policy import ExecutionPolicy
from sandbox.core.runtime_type import RuntimeType
from sandbox.host.guest_tree import INODE_BYTES
from sandbox.mcp import pages, results
from sandbox.mcp.descriptions import (
    CREATE_SESSION,
    DESTROY_SESSION,
    EXECUTE_CODE,
    GET_METRICS,
    JS_HELPERS,
    LIST_PACKAGES,
    LIST_RUNTIMES,
    LIST_SESSIONS,
    PYTHON_MODULES,
    READ_FILE,
    RESET_WORKSPACE,
    WORKSPACE_INFO,
    WRITE_FILE,
)
from sandbox.mcp.execution_result import OUTPUT_DIR, ExecutionShaper
from sandbox.mcp.external_files import EXTERNAL_GUEST_PATH
from sandbox.mcp.identity import LOCAL_CLIENT, client_key
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
    language_of,
)
from sandbox.mcp.rate_limit import RateLimiter
from sandbox.mcp.session_registry import LiveSession, SessionRegistry
from sandbox.runtimes import runtime_for
from sandbox.sessions import changes
from sandbox.sessions.files import (
    list_session_files,
    read_session_file,
    session_workspace,
    write_session_file,
)
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
# get_workspace_info lists at most this many files, fewer when their paths are long.
_LISTING_STEPS = (1000, 200, 50, 0)


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

    def register(self, server: MCPServer[Any]) -> None:
        """Add every tool to ``server``, with descriptions stating this server's actual limits."""
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
                result = live.sandbox.execute(code, timeout_seconds=timeout)
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
    ) -> Annotated[CallToolResult, SessionOutput]:
        client = self._admit(ctx)
        live = self._registry.create(
            client, RuntimeType(language), auto_persist_globals=auto_persist_globals
        )
        output = self._session_output(live)
        return self._result(
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
        client = self._admit(ctx)
        self._registry.destroy(client, session_id)
        return self._result(
            DestroyOutput(session_id=session_id, destroyed=True),
            f"Destroyed session {session_id}: its interpreter is stopped and its files deleted.",
        )

    def list_sessions(self, ctx: Context[Any, Any]) -> Annotated[CallToolResult, SessionListOutput]:
        client = self._admit(ctx)
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
        return self._result(
            SessionListOutput(
                sessions=summaries,
                max_sessions_per_client=self._limits.max_sessions_per_client,
                retention_seconds=self._limits.retention_seconds,
            ),
            "\n".join(lines) if lines else "You have no sessions; execute_code creates one.",
        )

    def list_runtimes(self, ctx: Context[Any, Any]) -> Annotated[CallToolResult, RuntimesOutput]:
        self._admit(ctx)
        notes = {
            RuntimeType.PYTHON: "CPython 3.15 compiled to WebAssembly (WASI): the standard "
            "library plus numpy, pandas, scipy, scikit-learn, matplotlib and more (see "
            "list_available_packages). A cell's last expression is printed like in a REPL; a "
            "figure left open comes back as a PNG.",
            RuntimeType.JAVASCRIPT: "QuickJS-NG: ES2023 with top-level await, no Node.js or "
            "browser APIs. File helpers such as readText/writeText are globals. A cell's "
            "completion value is echoed as in the Node REPL, and cells can be run again.",
        }
        runtimes = [
            RuntimeInfo(
                language=language_of(kind),
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
        return self._result(
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
                builtins=[PackageInfo(name=n, description=d) for n, d in PYTHON_MODULES],
                can_install=False,
                notes="CPython 3.15: the standard library plus the packages listed here "
                "(numpy, pandas, scipy, scikit-learn, statsmodels, matplotlib with the Agg "
                "backend, ...); import them directly. This server installs nothing. Not "
                "available: threads, ssl, ctypes, mmap, sockets and subprocesses.",
            )
        else:
            output = PackagesOutput(
                language=language,
                third_party_packages={},
                builtins=[PackageInfo(name=n, description=d) for n, d in JS_HELPERS],
                can_install=False,
                notes="No npm packages and no import of modules by name: use the global "
                "helpers and the std and os objects. Relative paths are resolved against the "
                "workspace.",
            )
        lines = [f"{name} {version}" for name, version in output.third_party_packages.items()]
        lines += [f"{item.name}: {item.description}" for item in output.builtins]
        return self._result(output, "\n".join([output.notes, *lines]))

    def get_workspace_info(
        self, session_id: SessionId, ctx: Context[Any, Any]
    ) -> Annotated[CallToolResult, WorkspaceOutput]:
        client = self._admit(ctx)
        with self._registry.use(client, session_id) as live, _file_errors("."):
            snapshot = changes.snapshot(session_workspace(live.session_id))
            entries = sorted(snapshot.items())
            return results.first_fitting(
                self._limits,
                [self._workspace_attempt(live, entries, listed) for listed in _LISTING_STEPS],
            )

    def read_file(
        self,
        session_id: SessionId,
        path: WorkspacePath,
        ctx: Context[Any, Any],
        encoding: FileEncoding = "utf-8",
        offset: Annotated[
            int, Field(ge=0, description="Byte offset to start at; pass next_offset to go on.")
        ] = 0,
        length: Annotated[
            int | None,
            Field(
                ge=16,
                description="Most bytes to return (fewer when the result would be too large); "
                "omit for as many as fit.",
            ),
        ] = None,
    ) -> Annotated[CallToolResult, FileContentOutput]:
        client = self._admit(ctx)
        with self._registry.use(client, session_id) as live, _file_errors(path):
            listed = changes.snapshot(session_workspace(live.session_id)).get(_normalised(path))
            if listed is not None:
                self._check_file_size(client, listed[0], path)
            data = read_session_file(live.session_id, path)
        self._check_file_size(client, len(data), path)
        return pages.file_page(
            session_id=session_id,
            path=path,
            data=data,
            encoding=encoding,
            offset=offset,
            length=length,
            limits=self._limits,
        )

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
        self._check_file_size(client, len(data), path)
        with self._registry.use(client, session_id) as live, _file_errors(path):
            # The same accounting as the guest's own writes: data plus a cost per entry.
            scan = changes.scan_workspace(
                session_workspace(live.session_id), self._policy.workspace_max_files + 1
            )
            replaced = scan.files.get(_normalised(path))
            others = scan.used_bytes - (replaced[0] if replaced else -INODE_BYTES)
            too_many = replaced is None and scan.entries >= self._policy.workspace_max_files
            if too_many or others + len(data) > self._policy.workspace_max_bytes:
                raise self._reject(
                    client,
                    "workspace_full",
                    f"writing {len(data)} bytes would take the workspace past its "
                    f"{self._policy.workspace_max_bytes}-byte quota or its "
                    f"{self._policy.workspace_max_files}-file limit ({others} bytes and "
                    f"{scan.entries} entries are used by other files; each entry costs "
                    f"{INODE_BYTES} bytes); delete files from code or call reset_workspace first",
                )
            write_session_file(live.session_id, path, data)
        output = FileWrittenOutput(
            session_id=session_id,
            path=path,
            sandbox_path=f"{self._policy.guest_mount_path}/{_normalised(path)}",
            size_bytes=len(data),
        )
        return self._result(
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
        return self._result(
            ResetOutput(session_id=session_id, files_deleted=deleted),
            f"Reset session {session_id}: deleted {deleted} files and restarted the interpreter "
            "(variables are gone). The session_id stays valid.",
        )

    def get_metrics(self, ctx: Context[Any, Any]) -> Annotated[CallToolResult, MetricsOutput]:
        client = self._admit(ctx)
        output = self._metrics.snapshot(client, live_sessions=self._registry.attached_count(client))
        latency = output.latency
        return self._result(
            output,
            f"Your calls: {output.executions} executions ({output.failed} failed"
            + "".join(f", {n} {why}" for why, n in sorted(output.failures_by_reason.items()))
            + f"); latency p50 {latency.p50_ms} ms, p95 {latency.p95_ms} ms over "
            f"{latency.samples} calls; {output.live_sessions} sessions held.",
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
            (self.execute_code, EXECUTE_CODE, hints("Run code")),
            (self.create_session, CREATE_SESSION, hints("Create session")),
            (self.destroy_session, DESTROY_SESSION, hints("Destroy session", destructive=True)),
            (self.list_sessions, LIST_SESSIONS, hints("List sessions", read_only=True)),
            (self.list_runtimes, LIST_RUNTIMES, hints("List runtimes", read_only=True)),
            (self.list_available_packages, LIST_PACKAGES, hints("List packages", read_only=True)),
            (self.get_workspace_info, WORKSPACE_INFO, hints("Workspace info", read_only=True)),
            (self.read_file, READ_FILE, hints("Read file", read_only=True)),
            (self.write_file, WRITE_FILE, hints("Write file", destructive=True)),
            (self.reset_workspace, RESET_WORKSPACE, hints("Reset workspace", destructive=True)),
            (self.get_metrics, GET_METRICS, hints("Your metrics", read_only=True)),
        ]

    def _admit(self, ctx: Context[Any, Any]) -> str:
        """The caller's client key, once the call has passed the client's rate limit.

        The local (stdio) client is not limited unless the operator asked for it: it is the
        one agent that started the server, and it shares the server with nobody.
        """
        client = client_key(ctx)
        if client == LOCAL_CLIENT and not self._limits.rate_limit_stdio:
            return client
        wait = self._limiter.acquire(client)
        if wait > 0:
            raise self._reject(
                client,
                "rate_limit",
                f"rate limit reached ({self._limits.burst_calls} calls at once, "
                f"{self._limits.calls_per_minute} per minute); retry in {retry_after(wait)} s",
            )
        return client

    def _reject(self, client: str, reason: str, message: str) -> ToolError:
        self._metrics.record_rejection(client, reason)
        return ToolError(message)

    def _result(self, output: BaseModel, text: str) -> CallToolResult:
        return results.tool_result(output, text, limits=self._limits)

    def _timeout(self, client: str, requested: float | None) -> float:
        if requested is None:
            return self._default_timeout
        if requested > self._limits.max_timeout_seconds:
            raise self._reject(
                client,
                "timeout_too_large",
                f"timeout_seconds={requested:g} is over this server's maximum of "
                f"{self._limits.max_timeout_seconds:g}; pass at most that, or split the work",
            )
        return requested

    def _check_file_size(self, client: str, size: int, path: str) -> None:
        if size > self._limits.max_file_bytes:
            raise self._reject(
                client,
                "file_too_large",
                f"{path!r} is {size} bytes, over the {self._limits.max_file_bytes}-byte limit "
                "for file transfers. Have code summarise, filter or split it into smaller files.",
            )

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

    def _workspace_attempt(
        self, live: LiveSession, entries: list[tuple[str, tuple[int, int]]], listed: int
    ) -> Callable[[], CallToolResult]:
        """get_workspace_info's result listing at most ``listed`` files."""

        def build() -> CallToolResult:
            files = [
                FileEntry(
                    path=path,
                    size_bytes=size,
                    modified_at=datetime.fromtimestamp(mtime_ns / 1e9, UTC).isoformat(),
                )
                for path, (size, mtime_ns) in entries[:listed]
            ]
            output = WorkspaceOutput(
                session_id=live.session_id,
                language=language_of(live.language),
                workspace_path=self._policy.guest_mount_path,
                files=files,
                files_not_listed=len(entries) - len(files),
                file_count=len(entries),
                total_bytes=sum(size for _, (size, _) in entries),
                executions=live.executions,
                created_at=live.created_at.isoformat(),
                last_used_at=live.last_used_at.isoformat(),
                idle_timeout_seconds=self._limits.session_idle_ttl_seconds,
                auto_persist_globals=live.auto_persist_globals,
            )
            listing = "\n".join(f"{f.path}  {f.size_bytes} bytes" for f in files)
            if output.files_not_listed:
                listing += f"\n... and {output.files_not_listed} more files"
            return results.assemble(
                output,
                f"{output.language} session {output.session_id}, {output.executions} "
                f"executions, {output.file_count} files ({output.total_bytes} bytes) in "
                f"{output.workspace_path}" + (f":\n{listing}" if listing else "."),
            )

        return build


def retry_after(wait: float) -> str:
    """Seconds to wait, rounded up to a tenth: "retry in 0.0 s" would invite a retry storm."""
    return f"{max(0.1, math.ceil(wait * 10) / 10):.1f}"


def _normalised(path: str) -> str:
    return PurePosixPath(path).as_posix()


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
