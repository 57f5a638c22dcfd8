"""The MCP server end to end over Streamable HTTP: bearer auth and isolation between clients."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp.client import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from test_mcp_support import REPO, call, text_of

pytestmark = pytest.mark.anyio

_TOKEN = secrets.token_urlsafe(24)
_TOKEN_ENV = "LLM_WASM_SANDBOX_MCP_TOKEN"
_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": HANDSHAKE_PROTOCOL_VERSIONS[-1],
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module: started with a token, on a free loopback port."""
    with serving(tmp_path_factory.mktemp("mcp-http")) as (address, _):
        yield address


@contextmanager
def serving(home: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A server process keeping its sessions under ``home``, and the URL of its endpoint."""
    port = _free_port()
    env = {**os.environ, "LLM_WASM_SANDBOX_HOME": str(home), _TOKEN_ENV: _TOKEN}
    command = [sys.executable, "-m", "sandbox.mcp.server", "--transport", "http"]
    with (home / "server.log").open("w") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, cwd=REPO, stdout=log, stderr=log
        )
        try:
            _wait_until_listening(process, port, home / "server.log")
            yield f"http://127.0.0.1:{port}/mcp", process
        finally:
            process.terminate()
            process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Poll until the port accepts connections; waiting on the process doubles as the pause."""
    deadline = time.monotonic() + 60
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


def _authorised_http() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {_TOKEN}"}, timeout=httpx2.Timeout(30, read=120)
    )


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[ClientSession]:
    async with (
        _authorised_http() as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def test_a_client_with_the_token_runs_code(url: str) -> None:
    async with connect(url) as session:
        result = await call(session, "execute_code", code="print(sum(range(10)))")
        js = await call(session, "execute_code", code="console.log(2 ** 10)", language="javascript")

    assert result["stdout"] == "45\n"
    assert js["stdout"] == "1024\n"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": _TOKEN}]
)
async def test_requests_without_the_right_token_get_401(url: str, headers: dict[str, str]) -> None:
    async with httpx2.AsyncClient(headers=headers) as http:
        response = await http.post(
            url,
            json=_INITIALIZE,
            headers={"Accept": "application/json, text/event-stream"},
        )

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")


async def test_clients_cannot_see_each_others_sessions(url: str) -> None:
    async with connect(url) as alice, connect(url) as bob:
        private = (await call(alice, "create_session", language="python"))["session_id"]
        await call(alice, "write_file", session_id=private, path="secret.txt", content="alice")
        alice_default = (await call(alice, "execute_code", code="x = 1"))["session_id"]

        assert (await call(bob, "list_sessions"))["sessions"] == []
        for tool, arguments in [
            ("get_workspace_info", {"session_id": private}),
            ("read_file", {"session_id": private, "path": "secret.txt"}),
            ("execute_code", {"session_id": alice_default, "code": "print(x)"}),
            ("destroy_session", {"session_id": private}),
        ]:
            refused = await bob.call_tool(tool, arguments)
            assert refused.is_error, tool
            assert "no session" in text_of(refused)
        bob_default = await call(bob, "execute_code", code="print('x' in globals())")
        assert bob_default["stdout"] == "False\n"
        assert bob_default["session_id"] != alice_default

        still_there = await call(alice, "read_file", session_id=private, path="secret.txt")
        assert still_there["content"] == "alice"


async def test_auto_mode_clients_fall_back_to_isolated_mcp_sessions(url: str) -> None:
    """The SDK's high-level Client first tries the session-less 2026 protocol; it must not share."""
    async with (
        _authorised_http() as http_a,
        _authorised_http() as http_b,
        Client(streamable_http_client(url, http_client=http_a)) as first,
        Client(streamable_http_client(url, http_client=http_b)) as second,
    ):
        assert first.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
        created = await first.call_tool("create_session", {"language": "javascript"})
        assert created.structured_content is not None
        listed = await second.call_tool("list_sessions", {})

    assert listed.structured_content is not None
    assert listed.structured_content["sessions"] == []


def test_a_public_address_without_a_token_is_refused(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if name != _TOKEN_ENV}
    env["LLM_WASM_SANDBOX_HOME"] = str(tmp_path)
    command = [sys.executable, "-m", "sandbox.mcp.server", "--transport", "http"]
    finished = subprocess.run(
        [*command, "--host", "0.0.0.0", "--port", str(_free_port())],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert "refusing to serve '0.0.0.0' without authentication" in finished.stderr
    assert "--auth-token" in finished.stderr


async def test_stopping_the_server_deletes_its_sessions(tmp_path: Path) -> None:
    with serving(tmp_path) as (address, process):
        async with connect(address) as session:
            created = await call(session, "execute_code", code="open('out.txt', 'w').write('1')")
        workspace = tmp_path / "sessions" / created["session_id"]
        assert workspace.is_dir()

        process.terminate()
        assert await anyio.to_thread.run_sync(process.wait, 30) == 128 + signal.SIGTERM

    assert not workspace.exists()
