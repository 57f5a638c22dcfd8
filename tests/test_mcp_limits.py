"""The MCP server's safety limits: rate limits, session caps, idle eviction and bind checks.

The server runs in-process behind the SDK's in-memory transport, so small limits can be set
directly; time-dependent behaviour uses a hand-driven clock instead of sleeping. The end-to-end
behaviour of the same limits against real server processes is in test_mcp_lifecycle.py.
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
from sandbox.mcp.session_registry import EVICTED_FOR_ROOM, EVICTED_IDLE, SessionRegistry
from sandbox.mcp.tools import retry_after


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
    limits = ServerLimits(calls_per_minute=1, burst_calls=2, rate_limit_stdio=True)
    async with connect(limits) as client:
        for _ in range(2):
            assert not (await client.call_tool("list_runtimes", {})).is_error
        refused = await _error_text(client, "list_runtimes")

    assert "rate limit reached" in refused
    assert "retry in 60.0 s" in refused


@pytest.mark.anyio
async def test_the_local_client_is_not_rate_limited_unless_asked() -> None:
    async with connect(ServerLimits(calls_per_minute=1, burst_calls=2)) as client:
        results = [await client.call_tool("list_runtimes", {}) for _ in range(5)]

    assert not any(result.is_error for result in results)


@pytest.mark.parametrize(
    ("wait", "shown"),
    [(0.0001, "0.1"), (0.04, "0.1"), (0.1, "0.1"), (0.11, "0.2"), (59.99, "60.0")],
)
def test_retry_times_round_up_and_never_read_zero(wait: float, shown: str) -> None:
    assert retry_after(wait) == shown


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
    # Host writes are charged as the guest's are: the data plus 512 bytes per entry.
    policy = ExecutionPolicy(workspace_max_bytes=3000, workspace_max_files=3)
    async with connect(policy=policy) as client:
        created = await client.call_tool("create_session", {"language": "python"})
        assert created.structured_content is not None
        session = created.structured_content["session_id"]

        async def write(path: str, size: int) -> bool:
            arguments = {"session_id": session, "path": path, "content": "x" * size}
            return not (await client.call_tool("write_file", arguments)).is_error

        assert await write("a.txt", 1200)
        assert not await write("b.txt", 1200)  # 2 x (1200 + 512) > 3000
        assert await write("a.txt", 2000)  # replacing a file frees its old size first
        full = await _error_text(
            client, "write_file", session_id=session, path="c", content="xx" * 60
        )
        assert await write("a.txt", 10)
        assert await write("b", 1) and await write("c", 1)
        assert not await write("d", 1)  # a fourth entry: past workspace_max_files

    assert "3000-byte quota" in full


def test_idle_interpreters_are_freed_but_their_sessions_stay() -> None:
    clock = ManualClock()
    limits = ServerLimits(max_sessions=4, max_sessions_per_client=2, session_idle_ttl_seconds=60)
    registry = _registry(limits, clock)
    try:
        alice = registry.create("alice", RuntimeType.JAVASCRIPT, auto_persist_globals=False)
        bob = registry.create("bob", RuntimeType.JAVASCRIPT, auto_persist_globals=False)
        _assert_unknown(registry, "bob", alice.session_id)

        clock.now = 30.0
        with registry.use("alice", alice.session_id, interpreter=True):
            clock.now = 100.0  # both idle past the TTL, but alice's is busy
            assert registry.evict_idle() == 1
        assert not bob.loaded
        assert bob.sandbox is not None and bob.sandbox.workspace_path.is_dir()

        with registry.use("bob", bob.session_id, interpreter=True) as again:
            result = again.sandbox.execute("console.log(1)") if again.sandbox else None
        assert result is not None and result.metadata["session_reset_reason"] == EVICTED_IDLE

        clock.now = 150.0  # alice's call ended at 100: idle for 50 s only
        assert registry.evict_idle() == 0
    finally:
        registry.close_all()


def test_a_full_server_frees_another_clients_idle_interpreter_before_refusing() -> None:
    clock = ManualClock()
    limits = ServerLimits(max_sessions=2, max_sessions_per_client=2)
    registry = _registry(limits, clock)
    try:
        first = registry.create("alice", RuntimeType.JAVASCRIPT, auto_persist_globals=False)
        clock.now = 1.0
        second = registry.create("alice", RuntimeType.JAVASCRIPT, auto_persist_globals=False)
        clock.now = 2.0
        bob = registry.create("bob", RuntimeType.JAVASCRIPT, auto_persist_globals=False)
        assert not first.loaded and second.loaded  # alice's least recently used one went

        # While every interpreter is in a call, and only then, a newcomer is refused.
        with (
            registry.use("alice", second.session_id),
            registry.use("bob", bob.session_id),
            pytest.raises(ToolError, match="running calls right now"),
        ):
            registry.create("carol", RuntimeType.JAVASCRIPT, auto_persist_globals=False)
        carol = registry.create("carol", RuntimeType.JAVASCRIPT, auto_persist_globals=False)
        assert carol.loaded and [second.loaded, bob.loaded].count(True) == 1

        with registry.use("alice", first.session_id, interpreter=True) as back:
            assert back.sandbox is not None
            result = back.sandbox.execute("console.log('back')")
        assert result.stdout == "back\n"
        assert result.metadata["session_reset_reason"] == EVICTED_FOR_ROOM
    finally:
        registry.close_all()


def test_a_released_client_leaves_detached_sessions_for_its_principal() -> None:
    registry = _registry(ServerLimits(), ManualClock())
    try:
        live = registry.create("alice", RuntimeType.JAVASCRIPT, auto_persist_globals=False)
        registry.release_client("alice")
        assert live.client is None and live.sandbox is None and not live.loaded
        assert [(s.session_id, default) for s, default in registry.sessions_of("bob")] == [
            (live.session_id, False)
        ]
        with pytest.raises(ToolError, match="has ended"):
            registry.create("alice", RuntimeType.JAVASCRIPT, auto_persist_globals=False)

        with registry.use("bob", live.session_id, interpreter=True) as mine:
            assert mine.client == "bob" and mine.fresh_interpreter == "reattached"
        _assert_unknown(registry, "carol", live.session_id)
    finally:
        registry.close_all()


def _registry(limits: ServerLimits, clock: ManualClock) -> SessionRegistry:
    return SessionRegistry(ExecutionPolicy(), limits, Metrics(), clock=clock)


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
