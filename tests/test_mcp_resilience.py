"""A server that runs for weeks, on the surfaces added after the first audit: calls queued on a
busy session, checkpoints of freed interpreters. Real server processes over HTTP, driven with
the official MCP client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from test_mcp_support import call, connect, eventually, serving, thread_count

pytestmark = pytest.mark.anyio

_QUEUED = 45  # more than anyio's default pool of 40 worker threads


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_calls_queued_on_a_busy_session_do_not_stall_other_clients(tmp_path: Path) -> None:
    """Every tool call waits on a worker thread, also while its session is busy: a client
    queueing 45 calls on one session took all of anyio's 40 threads, and every other client's
    calls (and its disconnect's clean-up) waited for that session's calls to end."""
    with (
        serving(tmp_path, "--burst-calls", "100", "--calls-per-minute", "1000") as (url, process),
        anyio.fail_after(120),
    ):
        async with connect(url) as alice, connect(url) as bob:
            session_id = (await call(alice, "create_session", language="javascript"))["session_id"]
            started = tmp_path / "sessions" / session_id / "workspace" / "started"
            sleeper_done: list[Any] = []

            async def sleep_in_session() -> None:
                code = "writeText('started', '1'); os.sleep(60000)"
                arguments = {"session_id": session_id, "code": code, "timeout_seconds": 90}
                sleeper_done.append(await alice.call_tool("execute_code", arguments))

            async def queue_behind() -> None:
                arguments = {"session_id": session_id, "code": "1", "timeout_seconds": 90}
                await alice.call_tool("execute_code", arguments)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(sleep_in_session)
                await eventually(started.exists, "the first call runs")
                threads = thread_count(process)
                for _ in range(_QUEUED):
                    tasks.start_soon(queue_behind)
                await eventually(
                    lambda: thread_count(process) >= threads + 39, "the calls wait on threads"
                )
                runtimes = await call(bob, "list_runtimes")
                assert {r["language"] for r in runtimes["runtimes"]} == {"python", "javascript"}
                assert not sleeper_done, "bob's call waited for alice's session"
                tasks.cancel_scope.cancel()  # cancels alice's calls: the cell stops at once


async def test_a_long_fork_does_not_hold_up_other_clients_sessions(tmp_path: Path) -> None:
    """A fork copies files and replays a JavaScript session's cells (each up to its timeout):
    it ran under the lock every creation and reattachment takes, so one client's fork kept
    every other client from getting a session until it ended."""
    with serving(tmp_path) as (url, _), anyio.fail_after(120):
        async with connect(url) as alice, connect(url) as bob:
            parent = (await call(alice, "create_session", language="javascript"))["session_id"]
            slow = "writeText('mark', '1'); os.sleep(2000)"
            await call(alice, "execute_code", session_id=parent, code=slow)
            forked: list[Any] = []

            def marks() -> int:
                return len(list((tmp_path / "sessions").glob("*/workspace/mark")))

            async def fork() -> None:
                forked.append(await call(alice, "fork_session", session_id=parent))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(fork)
                await eventually(lambda: marks() == 2, "the fork is being made")
                created = await call(bob, "create_session", language="javascript")
                assert not forked, "bob's create_session waited for alice's fork"
            ran = await call(bob, "execute_code", session_id=created["session_id"], code="6*7")
            assert ran["stdout"] == "42\n"
            child = forked[0]["session_id"]
            check = await call(alice, "execute_code", session_id=child, code="readText('mark')")
            assert check["stdout"] == "'1'\n"  # the copy of its files
