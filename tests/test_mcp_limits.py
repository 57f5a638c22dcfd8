"""The MCP server's safety limits: rate limits, session caps, idle expiry and bind checks.

The server runs in-process behind the SDK's in-memory transport, so small limits can be set
directly; time-dependent behaviour uses a hand-driven clock instead of sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from mcp.client import Client
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError
from test_mcp_support import text_of

from sandbox import ExecutionPolicy, RuntimeType
from sandbox.mcp.auth import ServerConfigError, check_http_exposure
from sandbox.mcp.limits import ServerLimits
from sandbox.mcp.metrics import Metrics
from sandbox.mcp.rate_limit import RateLimiter
from sandbox.mcp.server import build_server
from sandbox.mcp.session_registry import SessionRegistry


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def connect(
    limits: ServerLimits | None = None, policy: ExecutionPolicy | None = None
) -> AsyncIterator[Client]:
    async with Client(build_server(limits=limits, policy=policy), mode="legacy") as client:
        yield client


async def _error_text(client: Client, tool: str, **arguments: object) -> str:
    result = await client.call_tool(tool, dict(arguments))
    assert result.is_error, f"{tool} unexpectedly succeeded"
    return text_of(result)


@pytest.mark.anyio
async def test_a_burst_over_the_rate_limit_is_refused_with_a_retry_time() -> None:
    async with connect(ServerLimits(calls_per_minute=1, burst_calls=2)) as client:
        for _ in range(2):
            assert not (await client.call_tool("list_runtimes", {})).is_error
        refused = await _error_text(client, "list_runtimes")

    assert "rate limit reached" in refused
    assert "retry in" in refused


@pytest.mark.anyio
async def test_a_client_cannot_hold_more_sessions_than_its_share() -> None:
    async with connect(ServerLimits(max_sessions=4, max_sessions_per_client=2)) as client:
        created = [
            await client.call_tool("create_session", {"language": "python"}) for _ in range(2)
        ]
        assert not any(result.is_error for result in created), [text_of(r) for r in created]
        refused = await _error_text(client, "create_session", language="javascript")
        first = created[0].structured_content
        assert first is not None
        await client.call_tool("destroy_session", {"session_id": first["session_id"]})
        again = await client.call_tool("create_session", {"language": "javascript"})

    assert "destroy_session" in refused
    assert not again.is_error


@pytest.mark.anyio
async def test_write_file_respects_the_workspace_quota() -> None:
    async with connect(policy=ExecutionPolicy(workspace_max_bytes=1000)) as client:
        created = await client.call_tool("create_session", {"language": "python"})
        assert created.structured_content is not None
        session = created.structured_content["session_id"]

        async def write(path: str, size: int) -> bool:
            arguments = {"session_id": session, "path": path, "content": "x" * size}
            return not (await client.call_tool("write_file", arguments)).is_error

        assert await write("a.txt", 600)
        assert not await write("b.txt", 600)
        assert await write("a.txt", 900)  # replacing a file frees its old size first
        full = await _error_text(
            client, "write_file", session_id=session, path="c", content="xx" * 60
        )

    assert "1000-byte quota" in full


def test_idle_sessions_expire_unless_in_use_and_free_server_capacity() -> None:
    clock = ManualClock()
    limits = ServerLimits(max_sessions=2, max_sessions_per_client=2, session_idle_ttl_seconds=60)
    registry = SessionRegistry(ExecutionPolicy(), limits, Metrics(), clock=clock)
    alice = registry.create("alice", RuntimeType.PYTHON, auto_persist_globals=False)
    bob = registry.create("bob", RuntimeType.JAVASCRIPT, auto_persist_globals=False)
    bob_workspace = bob.sandbox.workspace_path
    try:
        with pytest.raises(ToolError, match="maximum of 2 sessions"):
            registry.create("carol", RuntimeType.PYTHON, auto_persist_globals=False)
        _assert_unknown(registry, "bob", alice.session_id)

        clock.now = 30.0
        with registry.use("alice", alice.session_id):
            clock.now = 100.0  # both idle past the TTL, but alice's is busy
            assert registry.evict_idle() == 1
        assert not bob_workspace.exists()
        _assert_unknown(registry, "bob", bob.session_id)
        carol = registry.create("carol", RuntimeType.PYTHON, auto_persist_globals=False)

        clock.now = 150.0  # alice's call ended at 100: idle for 50 s only
        assert registry.evict_idle() == 0
        assert [live.session_id for live, _ in registry.sessions_of("carol")] == [carol.session_id]
    finally:
        registry.close_all()
    assert not alice.sandbox.workspace_path.exists()


def _assert_unknown(registry: SessionRegistry, owner: str, session_id: str) -> None:
    with pytest.raises(ToolError, match="no session"), registry.use(owner, session_id):
        pass


def test_the_rate_limiter_refills_per_client() -> None:
    clock = ManualClock()
    limiter = RateLimiter(per_minute=60, burst=2, clock=clock)

    assert [limiter.acquire("a") for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(1.0)
    assert limiter.acquire("b") == 0.0
    clock.now = 1.0
    assert limiter.acquire("a") == 0.0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]"])
def test_loopback_may_serve_without_a_token(host: str) -> None:
    check_http_exposure(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "sandbox.example.com"])
def test_other_addresses_need_a_token(host: str) -> None:
    with pytest.raises(ServerConfigError, match="--auth-token"):
        check_http_exposure(host, None)
    check_http_exposure(host, "a-long-random-secret")


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ServerConfigError, match="empty"):
        check_http_exposure("127.0.0.1", "  ")


def test_limits_must_be_consistent() -> None:
    with pytest.raises(ValidationError, match="cannot exceed"):
        ServerLimits(max_sessions=2, max_sessions_per_client=3)
