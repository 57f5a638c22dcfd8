"""A client with a valid token against another client's checkpoints, and against the host disk.

One real HTTP server, driven by the official MCP client. Bob holds the token too, yet none of
the checkpoint tools reaches Alice's session; and Alice's guest cannot make fork_session write
many times her quota to the host (before the fix, hard links made a fork copy every path).
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from test_mcp_support import call, connect, ids_of, serving, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("mcp-security")) as (address, _):
        yield address


async def test_checkpoint_tools_reach_only_the_callers_sessions(url: str) -> None:
    with anyio.fail_after(120):
        async with connect(url) as alice, connect(url) as bob:
            private = (await call(alice, "create_session", language="python"))["session_id"]
            await call(alice, "execute_code", session_id=private, code="secret = 'alice'")
            made = await call(alice, "checkpoint_session", session_id=private, label="mine")
            checkpoint_id = made["checkpoint"]["checkpoint_id"]
            for tool, arguments in [
                ("checkpoint_session", {"session_id": private}),
                ("restore_session", {"session_id": private, "checkpoint": checkpoint_id}),
                ("restore_session", {"session_id": private, "checkpoint": "mine"}),
                ("undo_last_cell", {"session_id": private}),
                ("fork_session", {"session_id": private}),
            ]:
                refused = await bob.call_tool(tool, arguments)
                assert refused.is_error, tool
                assert "no session" in text_of(refused), tool
            # Bob's own session knows nothing of Alice's checkpoint either.
            own = (await call(bob, "create_session", language="python"))["session_id"]
            refused = await bob.call_tool(
                "restore_session", {"session_id": own, "checkpoint": checkpoint_id}
            )
            assert refused.is_error and "no checkpoint" in text_of(refused)
            listing = await call(alice, "execute_code", session_id=private, code="print(secret)")
            assert listing["stdout"] == "alice\n"


async def test_hard_links_cannot_make_a_fork_fill_the_host_disk(url: str) -> None:
    flood = (
        "import os\n"
        "with open('/app/a', 'wb') as f:\n"
        "    f.write(b'z' * (2 << 20))\n"
        "for i in range(60):\n"
        "    os.link('/app/a', f'/app/l{i}')\n"
        "print('ok')"
    )
    with anyio.fail_after(120):
        async with connect(url) as client:
            session = (await call(client, "create_session", language="python"))["session_id"]
            ran = await call(client, "execute_code", session_id=session, code=flood)
            assert ran["stdout"] == "ok\n", ran
            refused = await client.call_tool("fork_session", {"session_id": session})
            assert refused.is_error and "workspace_max_bytes" in text_of(refused)
            # No half-made fork is left holding the client's session allowance.
            assert ids_of(await call(client, "list_sessions"), detached=False) == {session}


async def test_read_file_refuses_a_huge_sparse_file_unread(url: str) -> None:
    """A guest picks a file's size for free; read_file checks it on the open file first."""
    sparse = (
        "import os\n"
        "os.makedirs('/app/.sandbox-state', exist_ok=True)\n"
        "fd = os.open('/app/.sandbox-state/huge', os.O_WRONLY | os.O_CREAT)\n"
        "os.pwrite(fd, b'x', 1 << 34)\n"
        "os.close(fd)"
    )
    with anyio.fail_after(60):
        async with connect(url) as client:
            session = (await call(client, "create_session", language="python"))["session_id"]
            await call(client, "execute_code", session_id=session, code=sparse)
            refused = await client.call_tool(
                "read_file", {"session_id": session, "path": ".sandbox-state/huge"}
            )
            assert refused.is_error and "over the" in text_of(refused), text_of(refused)
            ran = await call(client, "execute_code", session_id=session, code="print(7)")
            assert ran["stdout"] == "7\n"
