"""Helpers shared by the MCP test modules (no tests here): real server processes, calling
tools, reading results, and waiting for conditions with a deadline."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp.client import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

REPO = Path(__file__).resolve().parents[1]
TOKEN = secrets.token_urlsafe(24)
TOKEN_ENV = "LLM_WASM_SANDBOX_MCP_TOKEN"
_SERVER = [sys.executable, "-m", "sandbox.mcp.server"]


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Structured content of a successful call; fails the test on a tool error."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> CallToolResult:
    """The result of a call that must fail as an MCP tool error."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, f"{tool} unexpectedly succeeded: {text_of(result)}"
    return result


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_env(home: Path, token: str | None = TOKEN) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != TOKEN_ENV}
    env["LLM_WASM_SANDBOX_HOME"] = str(home)
    if token is not None:
        env[TOKEN_ENV] = token
    return env


@contextmanager
def serving(
    home: Path,
    *args: str,
    token: str | None = TOKEN,
    preexec_fn: Callable[[], None] | None = None,
    port: int | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """An HTTP server process keeping its sessions under ``home``, and its endpoint's URL.

    Several servers may run one after another on one ``home``; each logs to its own file.
    """
    port = port if port is not None else free_port()
    log_path = home / f"server-{port}-{time.monotonic_ns()}.log"
    command = [*_SERVER, "--transport", "http", "--port", str(port), *args]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            env=server_env(home, token),
            cwd=REPO,
            stdout=log,
            stderr=log,
            preexec_fn=preexec_fn,
        )
        try:
            wait_until_listening(process, port, log_path)
            yield f"http://127.0.0.1:{port}/mcp", process
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=60)


def wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Poll until the port accepts connections; waiting on the process doubles as the pause."""
    deadline = time.monotonic() + 90
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except ConnectionRefusedError:
            pass
        try:
            code = process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            assert time.monotonic() < deadline, f"no listener on {port}:\n{log.read_text()}"
            continue
        raise AssertionError(f"the server exited with {code}:\n{log.read_text()}")


def authorised_http(token: str | None = TOKEN) -> httpx2.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, read=180))


@asynccontextmanager
async def connect(url: str, token: str | None = TOKEN) -> AsyncIterator[ClientSession]:
    """An initialized MCP session over Streamable HTTP; leaving it sends DELETE."""
    async with (
        authorised_http(token) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def stdio_server(home: Path, *args: str) -> StdioServerParameters:
    env = {"LLM_WASM_SANDBOX_HOME": str(home)}
    if "LLM_WASM_SANDBOX_CACHE_DIR" in os.environ:
        env["LLM_WASM_SANDBOX_CACHE_DIR"] = os.environ["LLM_WASM_SANDBOX_CACHE_DIR"]
    return StdioServerParameters(command=_SERVER[0], args=[*_SERVER[1:], *args], env=env, cwd=REPO)


@asynccontextmanager
async def connect_stdio(server: StdioServerParameters) -> AsyncIterator[ClientSession]:
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    what: str,
    *,
    timeout: float = 30.0,
    every: float = 0.05,
) -> None:
    """Poll ``condition`` (plain or async) until it holds; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = condition()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await anyio.sleep(every)  # the polling interval, not a synchronisation


async def cancel_while_running(
    client: ClientSession, session_id: str, code: str
) -> tuple[dict[str, Any], CallToolResult]:
    """Run ``code`` in ``session_id`` and cancel it once it reports progress (its output).

    Returns the cancelled call's structured result and the cancel_execution result.
    """
    started = anyio.Event()
    finished: dict[str, Any] = {}

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        started.set()

    async def run() -> None:
        result = await client.call_tool(
            "execute_code",
            {"code": code, "session_id": session_id, "timeout_seconds": 60},
            progress_callback=on_progress,
        )
        finished.update(result.structured_content or {})

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run)
            await started.wait()
            stopped = await client.call_tool("cancel_execution", {"session_id": session_id})
    return finished, stopped


def thread_count(process: subprocess.Popen[bytes]) -> int:
    """Threads of a server process: every live interpreter owns one."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count in /proc")


def ids_of(listing: dict[str, Any], *, detached: bool | None = None) -> set[str]:
    return {
        s["session_id"]
        for s in listing["sessions"]
        if detached is None or s["detached"] is detached
    }


class RawSession:
    """An MCP session driven with plain HTTP requests: it holds no connection open between
    calls (no GET stream), and it never sends DELETE unless told to."""

    def __init__(self, http: httpx2.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url
        self._headers = {"Accept": "application/json, text/event-stream"}
        self._next_id = 1

    async def initialize(self) -> None:
        await self._post("initialize", _INITIALIZE_PARAMS)
        response = await self._http.post(
            self._url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=self._headers,
        )
        assert response.status_code == 202, response.text

    async def call_tool(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self._post("tools/call", {"name": tool, "arguments": arguments})
        assert not result.get("isError"), result
        content: dict[str, Any] = result["structuredContent"]
        return content

    async def _post(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        self._next_id += 1
        response = await self._http.post(self._url, json=message, headers=self._headers)
        assert response.status_code == 200, response.text
        if "mcp-session-id" in response.headers:
            self._headers["Mcp-Session-Id"] = response.headers["mcp-session-id"]
            self._headers["Mcp-Protocol-Version"] = _INITIALIZE_PARAMS["protocolVersion"]
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        reply = json.loads(data[-1] if data else response.text)
        assert "result" in reply, reply
        result: dict[str, Any] = reply["result"]
        return result


_INITIALIZE_PARAMS: dict[str, Any] = {
    "protocolVersion": HANDSHAKE_PROTOCOL_VERSIONS[-1],
    "capabilities": {},
    "clientInfo": {"name": "raw-test", "version": "1"},
}
