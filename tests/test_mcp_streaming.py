"""execute_code's output as progress notifications, and cancelling a call with
notifications/cancelled, through the official MCP client and a real server process."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from test_mcp_support import call, cancel_while_running, connect_stdio, stdio_server, text_of

pytestmark = pytest.mark.anyio

_LOOPS = {
    "python": ("x = 41", "print('looping')\nwhile True: pass", "print(x)"),
    "javascript": ("globalThis.x = 41", "console.log('looping'); for (;;) {}", "console.log(x)"),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_output_arrives_as_progress_before_the_result(tmp_path: Path) -> None:
    async with connect_stdio(stdio_server(tmp_path)) as client:
        session = (await call(client, "create_session", language="python"))["session_id"]
        workspace = tmp_path / "sessions" / session / "workspace"
        messages: list[str] = []
        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)
            messages.append(message or "")
            if "ready" in (message or ""):
                (workspace / "go").write_text("1")  # the guest waits for this file

        code = (
            "import os, sys, time\n"
            "print('ready')\n"
            "print('warn', file=sys.stderr)\n"
            "end = time.monotonic() + 20\n"
            "while not os.path.exists('go') and time.monotonic() < end:\n"
            "    time.sleep(0.01)\n"
            "print('done' if os.path.exists('go') else 'gave up')\n"
        )
        with anyio.fail_after(60):
            result = await client.call_tool(
                "execute_code",
                {"code": code, "session_id": session},
                progress_callback=on_progress,
            )
        output = result.structured_content or {}
        assert output["success"] and output["stdout"] == "ready\ndone\n", output
        assert "".join(messages) == "ready\n[stderr] warn\ndone\n"
        assert progress == sorted(progress) and len(set(progress)) == len(progress)

        # Without a progress token the same call works as before and sends nothing.
        (workspace / "go").unlink()
        plain = await call(client, "execute_code", code="print('quiet')", session_id=session)
        assert plain["stdout"] == "quiet\n" and len(messages) == 3


@pytest.mark.parametrize("language", ["python", "javascript"])
async def test_a_cancelled_request_stops_its_cell(tmp_path: Path, language: str) -> None:
    setup, loop, show = _LOOPS[language]
    async with connect_stdio(stdio_server(tmp_path)) as client:
        session = (await call(client, "create_session", language=language))["session_id"]
        await call(client, "execute_code", code=setup, session_id=session)
        looping = anyio.Event()

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            looping.set()

        async def run_loop(scope: anyio.CancelScope) -> None:
            with scope:
                await client.call_tool(
                    "execute_code",
                    {"code": loop, "session_id": session, "timeout_seconds": 120},
                    progress_callback=on_progress,
                )

        with anyio.fail_after(60):
            scope = anyio.CancelScope()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(run_loop, scope)
                await looping.wait()
                scope.cancel()  # the client sends notifications/cancelled
            # The session is free again long before the loop's 120 s deadline, and its
            # interpreter was replaced, as after any stop: x is gone.
            after = await client.call_tool("execute_code", {"code": show, "session_id": session})
        assert after.is_error and "not defined" in text_of(after), text_of(after)


@pytest.mark.parametrize("language", ["python", "javascript"])
async def test_cancel_execution_stops_the_running_call(tmp_path: Path, language: str) -> None:
    _, loop, _ = _LOOPS[language]
    async with connect_stdio(stdio_server(tmp_path)) as client:
        session = (await call(client, "create_session", language=language))["session_id"]
        idle = await call(client, "cancel_execution", session_id=session)
        assert idle == {
            "session_id": session,
            "running": False,
            "cancelled": False,
            "supported": True,
        }
        finished, cancelled = await cancel_while_running(client, session, loop)
        assert cancelled.structured_content == {
            "session_id": session,
            "running": True,
            "cancelled": True,
            "supported": True,
        }
        assert finished["trap_reason"] == "cancelled", finished
        assert finished["stdout"] == "looping\n"
