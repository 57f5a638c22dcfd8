"""Entry points of the MCP server: ``serve()`` for ``llm-wasm-sandbox mcp``, ``main()`` for
``llm-wasm-mcp``, and ``build_server()`` for embedding or in-process tests.

The protocol, both transports and bearer authentication are the official SDK's (MCPServer);
this module only decides how they are configured: Streamable HTTP at /mcp behind uvicorn with
connection limits (http_guard.py), a token required off loopback, a hook that detaches a
client's sessions when its MCP session ends, and a lifespan that recovers sessions a crashed
server left, sweeps idle interpreters and expired sessions, and detaches all at shutdown.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import uvicorn
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from pydantic import AnyHttpUrl, ValidationError

from sandbox.core.policy import ExecutionPolicy
from sandbox.mcp import code_mode
from sandbox.mcp.auth import TOKEN_ENV, ServerConfigError, StaticTokenVerifier, check_http_exposure
from sandbox.mcp.bridge import Bridge
from sandbox.mcp.bridge_config import BridgedServer, discover, load_bridge_file
from sandbox.mcp.checkpoint_tools import CheckpointTools
from sandbox.mcp.external_files import EXTERNAL_GUEST_PATH, stage_external_files
from sandbox.mcp.http_guard import connection_cap, guarded_protocol
from sandbox.mcp.identity import (
    Transport,
    principal_for,
    require_mcp_session_over_http,
    track_http_clients,
)
from sandbox.mcp.limits import ServerLimits
from sandbox.mcp.metrics import Metrics
from sandbox.mcp.server_logging import install_plain_logging
from sandbox.mcp.session_registry import SessionRegistry
from sandbox.mcp.tools import SandboxTools

HTTP_PATH = "/mcp"
# Set to 1 for llm-wasm-sandbox 0.4's JSON text content (the same as --legacy-text-content).
LEGACY_TEXT_ENV = "LLM_WASM_SANDBOX_MCP_LEGACY_TEXT"
TRANSPORTS: tuple[Transport, ...] = ("stdio", "http")
# uvicorn's default too, stated so that the bound on a request head is explicit.
_MAX_HEAD_BYTES = 16 * 1024
# A stop waits this long for open requests (an SSE stream never ends by itself), then cancels.
_GRACEFUL_STOP_SECONDS = 10
_log = logging.getLogger(__name__)
# Worker threads beyond one per connection: sweeps, releases of ended clients, stdio.
_SPARE_THREADS = 16

_INSTRUCTIONS = """\
This server runs untrusted Python and JavaScript in a WebAssembly sandbox with no network. \
Call execute_code directly; it keeps a live interpreter per session, so define data once and \
reuse it in later calls. Move files with write_file / read_file. Call list_runtimes for the \
limits and list_available_packages before relying on a library.\
"""


def build_server(
    *,
    policy: ExecutionPolicy | None = None,
    limits: ServerLimits | None = None,
    external_files: Sequence[str] = (),
    auth_token: str | None = None,
    public_url: str = "http://127.0.0.1:8080",
    transport: Transport = "stdio",
    bridge: Bridge | None = None,
    bridge_sources: Sequence[str] = (),
) -> MCPServer[dict[str, Any]]:
    """An MCPServer with the sandbox tools, ready for any transport.

    ``external_files`` names the files already mounted at /external by ``policy``; they are
    only announced to clients. With ``auth_token``, HTTP requests need it as a bearer token;
    ``public_url`` is where the server is reachable and only labels the token's issuer.
    ``transport`` decides whose sessions it records and may reattach: the local user's
    (stdio) or the token holder's (http). With a started ``bridge``, every session's guest
    can call its servers' tools (code mode) and ``list_bridged_tools`` describes them.
    """
    policy = policy if policy is not None else server_policy()
    limits = limits if limits is not None else ServerLimits()
    metrics = Metrics()
    registry = SessionRegistry(
        policy,
        limits,
        metrics,
        principal=principal_for(transport, auth_token),
        tools=bridge.host_tools() if bridge is not None else None,
    )

    async def client_ended(client: str) -> None:
        await anyio.to_thread.run_sync(registry.release_client, client, abandon_on_cancel=True)

    sandbox_tools = SandboxTools(
        policy=policy,
        limits=limits,
        external_files=list(external_files),
        registry=registry,
        metrics=metrics,
    )
    tools = [*sandbox_tools.tools(), *CheckpointTools(sandbox_tools, registry).tools()]
    instructions = _INSTRUCTIONS
    if bridge is not None:
        tools.append(code_mode.bridge_tool(bridge, list(bridge_sources)))
        instructions += code_mode.INSTRUCTIONS
    verifier = StaticTokenVerifier(auth_token) if auth_token is not None else None
    issuer = AnyHttpUrl(public_url)
    server: MCPServer[dict[str, Any]] = MCPServer(
        "llm-wasm-sandbox",
        title="LLM WebAssembly sandbox",
        instructions=instructions,
        version=metadata.version("llm-wasm-sandbox"),
        tools=tools,
        lifespan=_lifespan(registry, limits),
        log_level="WARNING",
        middleware=[
            require_mcp_session_over_http,
            track_http_clients(client_ended),
        ],
        token_verifier=verifier,
        auth=AuthSettings(issuer_url=issuer, resource_server_url=None)
        if verifier is not None
        else None,
    )
    return server


def serve(
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8080,
    auth_token: str | None = None,
    external_files: Sequence[Path] = (),
    *,
    limits: ServerLimits | None = None,
    storage_dir: Path | None = None,
    bridge_file: Path | None = None,
    bridge_discover: bool = False,
    bridge_timeout: float = 30.0,
) -> None:
    """Serve until the client disconnects (stdio) or the process is interrupted (HTTP).

    The external files are staged in a private directory, made inside ``storage_dir`` when
    given (0.4's ``--storage-dir``) and removed at exit. Raises ServerConfigError, before
    anything starts, for an unknown transport, a non-loopback HTTP address without a token,
    or unusable external files or bridge file. ``bridge_file`` (or ``bridge_discover``, the
    MCP clients' own config files) names MCP servers whose tools guest code may call.
    """
    if transport not in TRANSPORTS:
        raise ServerConfigError(f"unknown transport {transport!r}; use one of {TRANSPORTS}")
    limits = limits if limits is not None else ServerLimits()
    if transport == "http":
        check_http_exposure(host, auth_token)
    install_plain_logging()
    if storage_dir is not None:
        try:
            storage_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ServerConfigError(f"--storage-dir {storage_dir}: {error.strerror}") from None
    servers, sources = _bridged_servers(bridge_file, bridge_discover)
    with (
        tempfile.TemporaryDirectory(
            prefix="llm-wasm-sandbox-external-", dir=storage_dir
        ) as staging,
        _bridged(servers, bridge_timeout) as bridge,
    ):
        names = stage_external_files(
            external_files, Path(staging), max_bytes=limits.max_external_file_bytes
        )
        policy = _policy_with_external(Path(staging)) if names else server_policy()
        server = build_server(
            policy=policy,
            limits=limits,
            external_files=names,
            auth_token=auth_token if transport == "http" else None,
            public_url=_url(host, port),
            transport="http" if transport == "http" else "stdio",
            bridge=bridge,
            bridge_sources=sources,
        )
        if transport == "stdio":
            # A client that finds the server slow to exit after closing stdin sends SIGTERM
            # (the SDK's after 2 s); unwinding still removes the staged files.
            with _sigterm_unwinds():
                server.run("stdio")
            return
        if auth_token is None:
            _log.warning("serving %s without authentication (loopback only)", _url(host, port))
        app = server.streamable_http_app(
            streamable_http_path=HTTP_PATH,
            host=host,
            max_request_body_size=limits.max_request_body_bytes,
        )
        protocol = guarded_protocol(
            max_connections=connection_cap(limits.max_connections, limits.max_sessions),
            header_timeout=limits.header_timeout_seconds,
        )
        with _sigterm_unwinds():
            uvicorn.run(
                app,
                host=host,
                port=port,
                log_level="info",
                access_log=False,
                http=protocol,
                timeout_keep_alive=limits.keep_alive_seconds,
                h11_max_incomplete_event_size=_MAX_HEAD_BYTES,
                timeout_graceful_shutdown=_GRACEFUL_STOP_SECONDS,
            )


def main(argv: Sequence[str] | None = None) -> None:
    """The ``llm-wasm-mcp`` command."""
    parser = argparse.ArgumentParser(
        prog="llm-wasm-mcp",
        description="Serve the llm-wasm-sandbox to MCP clients: stdio by default, or "
        f"Streamable HTTP at {HTTP_PATH}.",
    )
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default="stdio",
        help="stdio (default) when the client starts the server; http to serve many clients.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address.")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port.")
    parser.add_argument(
        "--auth-token",
        default=os.environ.get(TOKEN_ENV),
        help=f"Bearer token HTTP clients must send (default: ${TOKEN_ENV}; prefer the "
        "variable, command lines are visible to other users). Required off loopback.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version('llm-wasm-sandbox')}"
    )
    parser.add_argument(
        "--external-files",
        nargs="*",
        type=Path,
        default=[],
        metavar="PATH",
        help=f"Host files every session can read at {EXTERNAL_GUEST_PATH}/.",
    )
    parser.add_argument(
        "--max-external-file-size-mb",
        type=int,
        metavar="MB",
        help="Refuse to start if an --external-files file is larger than this (default: no limit).",
    )
    parser.add_argument(
        "--storage-dir",
        type=Path,
        metavar="DIR",
        help="Directory to stage the --external-files in (a private directory inside it, "
        "removed at exit; default: the system's temporary directory).",
    )
    parser.add_argument(
        "--legacy-text-content",
        action="store_true",
        default=os.environ.get(LEGACY_TEXT_ENV, "") not in ("", "0"),
        help="Send each result's text as llm-wasm-sandbox 0.4's JSON {content, "
        "structured_content, execution_time_ms, success} instead of readable text (default: "
        f"${LEGACY_TEXT_ENV}=1 sets it).",
    )
    defaults = ServerLimits()
    parser.add_argument(
        "--calls-per-minute",
        type=int,
        help=f"Sustained tool calls allowed per client (default {defaults.calls_per_minute}). "
        "stdio is not rate-limited unless this or --burst-calls is given.",
    )
    parser.add_argument(
        "--burst-calls",
        type=int,
        help=f"Tool calls a client may make at once (default {defaults.burst_calls}).",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        help=f"Live interpreters across all clients (default {defaults.max_sessions}); the "
        "least recently used idle one is freed to make room.",
    )
    parser.add_argument(
        "--max-sessions-per-client",
        type=int,
        help=f"Sessions one client may hold (default {defaults.max_sessions_per_client}).",
    )
    parser.add_argument(
        "--retention-hours",
        type=float,
        help="Hours the sessions of a client that went away are kept for reattaching "
        f"(default {defaults.retention_seconds / 3600:g}; 0 deletes them at once).",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        help=f"Open HTTP connections (default {defaults.max_connections}, lowered to fit the "
        "file descriptor limit).",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        help="Seconds an HTTP client has to send a request head "
        f"(default {defaults.header_timeout_seconds:g}).",
    )
    bridging = parser.add_mutually_exclusive_group()
    bridging.add_argument(
        "--bridge",
        type=Path,
        metavar="SERVERS_JSON",
        help='MCP servers whose tools guest code may call (code mode): {"mcpServers": {name: '
        '{"command", "args", "env"} or {"url", "headers"}}}.',
    )
    bridging.add_argument(
        "--bridge-discover",
        action="store_true",
        help="Bridge the MCP servers that the config files of Claude Code, Cursor, VS Code, "
        "Zed, Gemini CLI and Codex define (project level, then user level); the files used "
        "are logged.",
    )
    parser.add_argument(
        "--bridge-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="How long a guest's call to a bridged tool may wait for its server (default 30); "
        "the cell's own deadline still applies.",
    )
    args = parser.parse_args(argv)
    if args.bridge_timeout <= 0:
        parser.error("--bridge-timeout must be more than 0 seconds")
    try:
        limits = _limits_from(args)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        parser.error(f"invalid limits: {where + ': ' if where else ''}{problem['msg']}")
    try:
        serve(
            transport=args.transport,
            host=args.host,
            port=args.port,
            auth_token=args.auth_token,
            external_files=args.external_files,
            limits=limits,
            storage_dir=args.storage_dir,
            bridge_file=args.bridge,
            bridge_discover=args.bridge_discover,
            bridge_timeout=args.bridge_timeout,
        )
    except ServerConfigError as error:
        parser.error(str(error))
    except KeyboardInterrupt:  # Ctrl-C is how a foreground server is meant to stop
        raise SystemExit(130) from None


def _limits_from(args: argparse.Namespace) -> ServerLimits:
    """ServerLimits from the options given; the rest keep their defaults."""
    given: dict[str, Any] = {
        "calls_per_minute": args.calls_per_minute,
        "burst_calls": args.burst_calls,
        "max_sessions": args.max_sessions,
        "max_sessions_per_client": args.max_sessions_per_client,
        "max_connections": args.max_connections,
        "header_timeout_seconds": args.header_timeout,
        "retention_seconds": None if args.retention_hours is None else args.retention_hours * 3600,
    }
    if args.max_external_file_size_mb is not None:
        given["max_external_file_bytes"] = args.max_external_file_size_mb * 1024 * 1024
    settings = {name: value for name, value in given.items() if value is not None}
    rate_limited = args.calls_per_minute is not None or args.burst_calls is not None
    return ServerLimits(
        **settings,
        rate_limit_stdio=rate_limited,
        legacy_text_content=args.legacy_text_content,
    )


def server_policy() -> ExecutionPolicy:
    """The configured defaults, with the automatic checkpoint before every cell on.

    undo_last_cell costs about a millisecond a call, which a model's turn never notices, and
    an agent that broke its session's state needs that tool; library callers opt in.
    """
    return ExecutionPolicy(undo_last_cell=True)


def _policy_with_external(staging: Path) -> ExecutionPolicy:
    """The server's policy plus the /external mount, keeping any mounts it already has."""
    base = server_policy()
    try:
        return ExecutionPolicy.model_validate(
            {**base.model_dump(), "mounts": {**base.mounts, staging: EXTERNAL_GUEST_PATH}}
        )
    except ValidationError as error:
        raise ServerConfigError(f"cannot mount the external files: {error}") from None


def _bridged_servers(
    bridge_file: Path | None, bridge_discover: bool
) -> tuple[dict[str, BridgedServer], list[str]]:
    """The servers to bridge and the files that named them."""
    if bridge_file is not None:
        return load_bridge_file(bridge_file), [str(bridge_file)]
    if not bridge_discover:
        return {}, []
    servers, used = discover(Path.cwd(), Path.home())
    if used:
        _log.warning("bridging %s from %s", ", ".join(servers), ", ".join(used))
    else:
        _log.warning("--bridge-discover found no MCP servers in the clients' config files")
    return servers, used


@contextmanager
def _bridged(servers: dict[str, BridgedServer], timeout: float) -> Iterator[Bridge | None]:
    """A started Bridge for ``servers`` (None without any), closed when serving ends."""
    if not servers:
        yield None
        return
    bridge = Bridge(servers, call_timeout=timeout)
    bridge.start()
    try:
        yield bridge
    finally:
        bridge.close()


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Make SIGTERM raise SystemExit while the server serves.

    uvicorn shuts down gracefully on SIGTERM and then re-raises the signal, and a stdio
    client that finds the server slow to exit sends one; under the default disposition that
    kills the process before the staging directory of the external files and the spare
    interpreters' workspaces are removed. SystemExit unwinds through that cleanup.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread, and uvicorn leaves them alone too
        return
    previous = signal.signal(signal.SIGTERM, _exit_for_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_for_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _lifespan(
    registry: SessionRegistry, limits: ServerLimits
) -> Callable[[MCPServer[dict[str, Any]]], AbstractAsyncContextManager[dict[str, Any]]]:
    """Recover what a crashed server left before serving, sweep while serving (idle
    interpreters, expired sessions) even when no calls arrive, and detach all at shutdown.

    Every tool call, and every call waiting for its busy session, holds one of anyio's worker
    threads (40 by default): one client queueing calls on its own session could take them all
    and stall every other client, and the clean-up of clients that disconnect. The pool is
    sized so that each open connection can hold a call and housekeeping still gets threads;
    a waiting thread costs only its (virtual) stack.
    """
    sweep_every = min(60.0, limits.session_idle_ttl_seconds / 4)
    worker_threads = connection_cap(limits.max_connections, limits.max_sessions) + _SPARE_THREADS

    async def sweep() -> None:
        while True:
            await anyio.sleep(sweep_every)  # a periodic timer, not a wait for a condition
            try:
                await anyio.to_thread.run_sync(registry.sweep)
            except Exception:  # a failed sweep must not take the server down; the next retries
                _log.exception("sweeping sessions failed")

    @asynccontextmanager
    async def lifespan(_: MCPServer[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = max(threads.total_tokens, worker_threads)
        try:
            adopted = await anyio.to_thread.run_sync(registry.recover)
        except Exception:  # serving matters more than recovering old sessions
            _log.exception("recovering sessions left on disk failed")
        else:
            if adopted:
                _log.info("kept %d sessions a previous server left for reattaching", adopted)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(sweep)
            try:
                yield {}
            finally:
                tasks.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(registry.close_all)

    return lifespan


if __name__ == "__main__":
    main()
