"""The checkpoint tools and restart-proof sessions, over stdio with the official MCP client:
real server processes, the second started on the first one's sessions after it shut down."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from test_mcp_support import call, call_error, connect_stdio, stdio_server, text_of

pytestmark = pytest.mark.anyio

DEFINE = (
    "import numpy as np\narr = np.arange(4)\nclass Box:\n    size = 3\n"
    "def double(v):\n    return v * 2\nx = 41"
)
CHECK = "print(x, double(Box.size), arr.sum())"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_checkpoint_tools_and_a_server_restart(tmp_path: Path) -> None:
    server = stdio_server(tmp_path / "home")
    with anyio.fail_after(120):
        async with connect_stdio(server) as client:
            created = await call(client, "create_session", language="python")
            session_id = created["session_id"]

            async def run(code: str, sid: str = session_id) -> dict[str, object]:
                return await call(client, "execute_code", code=code, session_id=sid)

            await run(DEFINE)
            made = await call(client, "checkpoint_session", session_id=session_id, label="good")
            assert made["checkpoint"]["label"] == "good" and made["checkpoint"]["size_bytes"] > 0
            await run("x = 'broken'; del Box")
            await call(client, "restore_session", session_id=session_id, checkpoint="good")
            assert (await run(CHECK))["stdout"] == "41 6 6\n"
            await run("x = 0")
            await call(client, "undo_last_cell", session_id=session_id)
            assert (await run(CHECK))["stdout"] == "41 6 6\n"

            forked = await call(client, "fork_session", session_id=session_id)
            fork_id = forked["session_id"]
            assert fork_id != session_id and forked["forked_from"] == session_id
            await run("x = 1; arr[0] = 100", fork_id)
            assert (await run(CHECK, fork_id))["stdout"] == "1 6 106\n"
            assert (await run(CHECK))["stdout"] == "41 6 6\n"

            refused = await call_error(
                client, "restore_session", session_id=session_id, checkpoint="missing"
            )
            assert "no checkpoint 'missing'" in text_of(refused)
            other = await call_error(client, "undo_last_cell", session_id="not-a-session")
            assert "no session" in text_of(other)

        # A new server process on the same sessions: the interpreter's state comes back.
        async with connect_stdio(server) as client:
            after = await call(client, "execute_code", code=CHECK, session_id=session_id)
            assert after["stdout"] == "41 6 6\n", after
            assert after["interpreter_restarted"] is False
