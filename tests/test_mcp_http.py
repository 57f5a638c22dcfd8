"""The MCP server end to end over Streamable HTTP: bearer auth and isolation between clients."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from test_mcp_support import (
    REPO,
    TOKEN,
    RawSession,
    authorised_http,
    call,
    connect,
    free_port,
    ids_of,
    server_env,
    serving,
    text_of,
)

pytestmark = pytest.mark.anyio

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


async def test_a_client_with_the_token_runs_code(url: str) -> None:
    async with connect(url) as session:
        result = await call(session, "execute_code", code="print(sum(range(10)))")
        js = await call(session, "execute_code", code="console.log(2 ** 10)", language="javascript")

    assert result["stdout"] == "45\n"
    assert js["stdout"] == "1024\n"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
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

        # Bob may see sessions that earlier, disconnected clients left, never Alice's.
        assert not ids_of(await call(bob, "list_sessions")) & {private, alice_default}
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


async def test_metrics_show_only_the_callers_own_figures(url: str) -> None:
    async with connect(url) as alice, connect(url) as bob:
        for _ in range(3):
            await call(alice, "execute_code", code="1 + 1;", language="javascript")
        await call(alice, "create_session", language="javascript")
        refused = await alice.call_tool("execute_code", {"code": "pass", "timeout_seconds": 3000})
        assert refused.is_error

        alice_figures = await call(alice, "get_metrics")
        bob_figures = await call(bob, "get_metrics")

    assert alice_figures["executions"] == 3
    assert alice_figures["live_sessions"] == 2
    assert alice_figures["sessions_created"] == 2
    assert alice_figures["rejected_calls"] == {"timeout_too_large": 1}
    assert bob_figures["executions"] == 0
    assert bob_figures["live_sessions"] == 0
    assert bob_figures["sessions_created"] == 0
    assert bob_figures["rejected_calls"] == {}
    assert bob_figures["latency"]["samples"] == 0


async def test_auto_mode_clients_fall_back_to_isolated_mcp_sessions(url: str) -> None:
    """The SDK's high-level Client first tries the session-less 2026 protocol; it must not share."""
    async with (
        authorised_http() as http_a,
        authorised_http() as http_b,
        Client(streamable_http_client(url, http_client=http_a)) as first,
        Client(streamable_http_client(url, http_client=http_b)) as second,
    ):
        assert first.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
        created = await first.call_tool("create_session", {"language": "javascript"})
        assert created.structured_content is not None
        listed = await second.call_tool("list_sessions", {})

    assert listed.structured_content is not None
    assert created.structured_content["session_id"] not in ids_of(listed.structured_content)


def test_a_public_address_without_a_token_is_refused(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "sandbox.mcp.server", "--transport", "http"]
    finished = subprocess.run(
        [*command, "--host", "0.0.0.0", "--port", str(free_port())],
        env=server_env(tmp_path, token=None),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2
    assert "refusing to serve '0.0.0.0' without authentication" in finished.stderr
    assert "--auth-token" in finished.stderr


async def test_stopping_the_server_keeps_workspaces_for_their_retention(tmp_path: Path) -> None:
    with serving(tmp_path) as (address, process):
        async with connect(address) as session:
            created = await call(
                session, "execute_code", code="writeText('out.txt', '1')", language="javascript"
            )
        workspace = tmp_path / "sessions" / created["session_id"] / "workspace"
        assert workspace.is_dir()

        process.terminate()
        assert await anyio.to_thread.run_sync(process.wait, 30) == 128 + signal.SIGTERM

    assert (workspace / "out.txt").read_text() == "1"


async def test_stopping_without_retention_deletes_the_sessions(tmp_path: Path) -> None:
    with serving(tmp_path, "--retention-hours", "0") as (address, process):
        async with authorised_http() as http:
            client = RawSession(http, address)  # stays attached: it never sends DELETE
            await client.initialize()
            created = await client.call_tool("create_session", language="javascript")
            workspace = tmp_path / "sessions" / created["session_id"]
            assert workspace.is_dir()

            process.terminate()
            assert await anyio.to_thread.run_sync(process.wait, 30) == 128 + signal.SIGTERM

    assert not workspace.exists()
