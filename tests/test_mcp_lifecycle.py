"""Sessions across the lives of clients and servers, against real server processes over HTTP.

What a disconnect frees (interpreters at once; workspaces after the retention period), how a
full server makes room instead of locking clients out, who may reattach a session left
behind, and what a server restarted after SIGKILL finds on disk.
"""

from __future__ import annotations

import json
import secrets
import signal
from pathlib import Path

import anyio
import pytest
from test_mcp_support import (
    TOKEN,
    call,
    call_error,
    connect,
    eventually,
    ids_of,
    serving,
    text_of,
    thread_count,
)

pytestmark = pytest.mark.anyio

_CAPPED = ("--max-sessions", "4", "--max-sessions-per-client", "2")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_clients_that_disconnect_leave_room_for_new_ones(tmp_path: Path) -> None:
    """The reported lock-out: 4 clients x 8 sessions, then every newcomer was refused."""
    with serving(tmp_path) as (url, process), anyio.fail_after(300):
        for _ in range(4):
            async with connect(url) as client:
                for _ in range(8):
                    await call(client, "create_session", language="javascript")
        # Every live interpreter owns a thread; those of the 32 sessions must go away.
        await eventually(lambda: thread_count(process) < 20, "the interpreters were freed")

        async with connect(url) as newcomer:
            created = [
                (await call(newcomer, "create_session", language="javascript"))["session_id"]
                for _ in range(8)
            ]
            for session_id in created:
                ran = await call(
                    newcomer, "execute_code", session_id=session_id, code="console.log(6 * 7)"
                )
                assert ran["stdout"] == "42\n"


async def test_one_client_cannot_lock_the_others_out(tmp_path: Path) -> None:
    with serving(tmp_path, *_CAPPED) as (url, _), anyio.fail_after(300):
        async with connect(url) as alice, connect(url) as bob, connect(url) as carol:
            alices = []
            for name in ("a", "b"):
                session_id = (await call(alice, "create_session", language="javascript"))[
                    "session_id"
                ]
                await call(alice, "execute_code", session_id=session_id, code=f"var v = '{name}';")
                await call(alice, "write_file", session_id=session_id, path="f.txt", content=name)
                alices.append(session_id)
            for _ in range(2):
                await call(bob, "create_session", language="javascript")

            # The server is full of idle interpreters: carol still gets her share.
            for _ in range(2):
                await call(carol, "create_session", language="javascript")
            over = await call_error(carol, "create_session", language="javascript")
            assert "the most one client may hold" in text_of(over)

            again = await call(
                alice,
                "execute_code",
                session_id=alices[0],
                code="console.log(typeof v, readText('f.txt'))",
            )
            assert again["stdout"] == "undefined a\n"  # a fresh interpreter, the same files
            assert again["interpreter_restarted"] is True
            assert again["restart_reason"] == "evicted_server_full"
            assert (await call(alice, "get_metrics"))["interpreters_evicted"] >= 1


async def test_a_disconnected_clients_sessions_wait_for_the_same_token(tmp_path: Path) -> None:
    with serving(tmp_path) as (url, _), anyio.fail_after(120):
        async with connect(url) as first:
            session_id = (await call(first, "create_session", language="javascript"))["session_id"]
            await call(first, "write_file", session_id=session_id, path="notes.txt", content="hi")

        async with connect(url) as second, connect(url) as third:

            async def detached() -> bool:
                return session_id in ids_of(await call(second, "list_sessions"), detached=True)

            await eventually(detached, "the session is listed as detached")
            listed = (await call(second, "list_sessions"))["sessions"]
            assert [s["expires_at"] for s in listed if s["session_id"] == session_id] != [None]

            read = await call(second, "read_file", session_id=session_id, path="notes.txt")
            assert read["content"] == "hi"
            ran = await call(
                second,
                "execute_code",
                session_id=session_id,
                code="console.log(readText('notes.txt'))",
            )
            assert ran["stdout"] == "hi\n"
            assert ran["restart_reason"] == "reattached"
            # Reattached, it is second's alone again.
            assert session_id not in ids_of(await call(third, "list_sessions"))
            refused = await call_error(third, "get_workspace_info", session_id=session_id)
            assert "no session" in text_of(refused)


async def test_without_retention_a_disconnect_deletes_the_workspace(tmp_path: Path) -> None:
    with serving(tmp_path, "--retention-hours", "0") as (url, _), anyio.fail_after(120):
        async with connect(url) as client:
            session_id = (await call(client, "create_session", language="javascript"))["session_id"]
            directory = tmp_path / "sessions" / session_id
            assert directory.is_dir()

        await eventually(lambda: not directory.exists(), "the workspace was deleted")


async def test_after_a_crash_sessions_come_back_to_their_token_only(tmp_path: Path) -> None:
    other_token = secrets.token_urlsafe(24)
    with serving(tmp_path) as (url, process), anyio.fail_after(120):
        async with connect(url) as client:
            created = await call(client, "create_session", language="javascript")
            session_id = created["session_id"]
            await call(client, "write_file", session_id=session_id, path="data.txt", content="42")
            process.send_signal(signal.SIGKILL)
            await anyio.to_thread.run_sync(process.wait, 30)
    directory = tmp_path / "sessions" / session_id
    record = (directory / "mcp-owner.json").read_text()
    assert json.loads(record)["language"] == "javascript"
    assert TOKEN not in record  # the owner is recorded as a hash of the token

    with serving(tmp_path, token=other_token) as (url, _), anyio.fail_after(120):
        async with connect(url, token=other_token) as stranger:
            assert session_id not in ids_of(await call(stranger, "list_sessions"))
            refused = await call_error(
                stranger, "read_file", session_id=session_id, path="data.txt"
            )
            assert "no session" in text_of(refused)
    assert directory.is_dir()  # someone else's, within its retention: left alone

    with serving(tmp_path) as (url, process), anyio.fail_after(120):
        async with connect(url) as owner_again:
            assert ids_of(await call(owner_again, "list_sessions"), detached=True) == {session_id}
            ran = await call(
                owner_again,
                "execute_code",
                session_id=session_id,
                code="console.log(readText('data.txt'))",
            )
            assert ran["stdout"] == "42\n"
            process.send_signal(signal.SIGKILL)
            await anyio.to_thread.run_sync(process.wait, 30)

    # Past retention (0 h here), the next server to start prunes it before it serves.
    with serving(tmp_path, "--retention-hours", "0"), anyio.fail_after(120):
        assert not directory.exists()
