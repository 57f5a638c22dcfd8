"""The MCP server end to end over stdio: a real server process driven by the official client."""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp.client import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_types import CallToolResult
from test_mcp_support import (
    REPO,
    call,
    call_error,
    connect_stdio,
    ids_of,
    stdio_server,
    text_of,
)

pytestmark = pytest.mark.anyio

_SHARED_TEXT = "shared from the host\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server(tmp_path: Path) -> StdioServerParameters:
    shared = tmp_path / "notes.txt"
    shared.write_text(_SHARED_TEXT)
    env = {"LLM_WASM_SANDBOX_HOME": str(tmp_path / "home")}
    if "LLM_WASM_SANDBOX_CACHE_DIR" in os.environ:
        env["LLM_WASM_SANDBOX_CACHE_DIR"] = os.environ["LLM_WASM_SANDBOX_CACHE_DIR"]
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "sandbox.mcp.server", "--external-files", str(shared)],
        env=env,
        cwd=REPO,
    )


@pytest.fixture
async def client(server: StdioServerParameters) -> AsyncIterator[ClientSession]:
    async with connect(server) as session:
        yield session


@asynccontextmanager
async def connect(server: StdioServerParameters) -> AsyncIterator[ClientSession]:
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def test_tools_are_listed_with_named_typed_parameters(client: ClientSession) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert set(tools) == {
        "execute_code",
        "create_session",
        "destroy_session",
        "list_sessions",
        "list_runtimes",
        "list_available_packages",
        "get_workspace_info",
        "read_file",
        "write_file",
        "reset_workspace",
        "get_metrics",
        # sandbox/mcp/checkpoint_tools.py
        "checkpoint_session",
        "restore_session",
        "undo_last_cell",
        "fork_session",
        # llm-wasm-sandbox 0.4's (tests/test_compat_mcp.py)
        "cancel_execution",
        "get_active_sessions",
        "reset_all_sessions",
    }
    execute = tools["execute_code"].input_schema
    assert set(execute["properties"]) == {
        "code",
        "language",
        "session_id",
        "timeout_seconds",
        "timeout",  # 0.4's name
    }
    assert execute["required"] == ["code"]
    assert execute["properties"]["code"]["type"] == "string"
    assert tools["write_file"].input_schema["required"] == ["session_id", "path", "content"]
    assert tools["create_session"].input_schema["properties"]["language"]["enum"] == [
        "python",
        "javascript",
    ]
    for tool in tools.values():
        assert tool.description and tool.output_schema is not None, tool.name
        assert tool.input_schema["additionalProperties"] is False, tool.name


async def test_python_and_javascript_keep_state_between_calls(client: ClientSession) -> None:
    first = await call(client, "execute_code", code="total = 40")
    second = await call(client, "execute_code", code="total + 2")
    assert second["stdout"] == "42\n"
    assert second["session_id"] == first["session_id"]  # the default Python session

    js = (await call(client, "create_session", language="javascript"))["session_id"]
    await call(client, "execute_code", code="let seen = ['a'];", session_id=js)
    pushed = await call(
        client, "execute_code", code="seen.push('b'); console.log(seen.join())", session_id=js
    )
    assert pushed["stdout"] == "a,b\n"
    assert pushed["language"] == "javascript"

    listed = await call(client, "list_sessions")
    assert {s["session_id"] for s in listed["sessions"]} == {first["session_id"], js}


async def test_files_move_in_and_out_of_a_session(client: ClientSession) -> None:
    session = (await call(client, "create_session", language="python"))["session_id"]
    await call(client, "write_file", session_id=session, path="in/data.csv", content="a,b\n1,2\n")
    png = bytes(range(256))
    await call(
        client,
        "write_file",
        session_id=session,
        path="raw.bin",
        content=base64.b64encode(png).decode(),
        encoding="base64",
    )

    run = await call(
        client,
        "execute_code",
        session_id=session,
        code="import csv\n"
        "rows = list(csv.DictReader(open('in/data.csv')))\n"
        "open('out.txt', 'w').write(str(int(rows[0]['a']) + int(rows[0]['b'])))\n"
        "print(len(open('raw.bin', 'rb').read()), open('/external/notes.txt').read(), end='')",
    )
    assert run["files_created"] == ["out.txt"]
    assert run["stdout"] == f"256 {_SHARED_TEXT}"

    assert (await call(client, "read_file", session_id=session, path="out.txt"))["content"] == "3"
    raw = await call(client, "read_file", session_id=session, path="raw.bin", encoding="base64")
    assert base64.b64decode(raw["content"]) == png
    info = await call(client, "get_workspace_info", session_id=session)
    assert {(f["path"], f["size_bytes"]) for f in info["files"]} == {
        ("in/data.csv", 8),
        ("out.txt", 1),
        ("raw.bin", 256),
    }

    escape = await call_error(client, "read_file", session_id=session, path="../session.json")
    assert "'..'" in text_of(escape)
    binary = await call_error(client, "read_file", session_id=session, path="raw.bin")
    assert "encoding='base64'" in text_of(binary)
    readonly = await call_error(
        client, "execute_code", session_id=session, code="open('/external/notes.txt', 'w')"
    )
    assert "PermissionError" in text_of(readonly)
    assert readonly.structured_content is not None
    assert readonly.structured_content["error_guidance"]["actionable_guidance"]

    reset = await call(client, "reset_workspace", session_id=session)
    assert reset["files_deleted"] == 3
    assert (await call(client, "get_workspace_info", session_id=session))["files"] == []


async def test_a_runaway_loop_is_stopped_and_the_session_survives(client: ClientSession) -> None:
    await call(client, "execute_code", code="marker = 1")
    stopped = await client.call_tool(
        "execute_code", {"code": "while True:\n    pass", "timeout_seconds": 1}
    )

    assert stopped.is_error
    result = stopped.structured_content
    assert result is not None
    assert result["success"] is False
    assert result["trap_reason"] in {"timeout", "fuel_exhausted"}
    assert result["interpreter_restarted"] is True
    assert result["restart_reason"] == result["trap_reason"]
    assert "variables" in result["hint"]

    after = await call(client, "execute_code", code="print('marker' in globals())")
    assert after["stdout"] == "False\n"  # a fresh interpreter, in the same session
    assert after["session_id"] == result["session_id"]
    metrics = await call(client, "get_metrics")
    assert metrics["executions"] == 3
    assert sum(metrics["failures_by_reason"].values()) == 1
    assert metrics["latency"]["p95_ms"] >= metrics["latency"]["p50_ms"] > 0


async def test_persisted_globals_survive_a_restart(client: ClientSession) -> None:
    created = await call(client, "create_session", language="python", auto_persist_globals=True)
    session = created["session_id"]
    assert created["auto_persist_globals"] is True
    saved = await call(
        client, "execute_code", session_id=session, code="answer = 41\nlog = open('log.txt', 'w')"
    )
    assert "log" in saved["unsaved_globals"]  # an open file cannot be pickled

    stopped = await call_error(
        client, "execute_code", session_id=session, code="while True:\n    pass", timeout_seconds=1
    )
    assert "come back" in text_of(stopped)
    after = await call(client, "execute_code", session_id=session, code="answer + 1")
    assert after["stdout"] == "42\n"


async def test_misuse_gets_actionable_tool_errors(client: ClientSession) -> None:
    unknown = await call_error(client, "get_workspace_info", session_id="not-a-session")
    assert "create_session" in text_of(unknown)

    too_long = await call_error(client, "execute_code", code="#" * (300 * 1024))
    assert "limit" in text_of(too_long)
    too_slow = await call_error(client, "execute_code", code="pass", timeout_seconds=3000)
    assert "maximum" in text_of(too_slow)

    session = (await call(client, "create_session", language="python"))["session_id"]
    wrong_language = await call_error(
        client, "execute_code", code="1", session_id=session, language="javascript"
    )
    assert "runs python" in text_of(wrong_language)
    await call(client, "destroy_session", session_id=session)
    gone = await call_error(client, "execute_code", code="1", session_id=session)
    assert "no session" in text_of(gone)

    packages = await call(client, "list_available_packages", language="python")
    assert "openpyxl" in packages["third_party_packages"] and not packages["can_install"]
    runtimes = await call(client, "list_runtimes")
    assert runtimes["external_files"] == ["notes.txt"]


async def test_sessions_outlive_the_client_and_the_next_server_reattaches_them(
    server: StdioServerParameters, tmp_path: Path
) -> None:
    async with connect(server) as first:
        created = await call(
            first, "execute_code", code="kept = 5\nopen('keep.txt', 'w').write('x')"
        )
    session_id = created["session_id"]
    workspace = tmp_path / "home" / "sessions" / session_id / "workspace"
    assert (workspace / "keep.txt").read_text() == "x"

    async with connect(server) as second:  # a new server process on the same home
        listed = await call(second, "list_sessions")
        assert ids_of(listed, detached=True) == {session_id}
        again = await call(
            second,
            "execute_code",
            session_id=session_id,
            code="print(open('keep.txt').read(), kept)",
        )
        assert again["stdout"] == "x 5\n"  # files and the interpreter's saved state
        assert again["interpreter_restarted"] is False
        assert ids_of(await call(second, "list_sessions"), detached=False) == {session_id}


async def test_without_retention_sessions_go_with_the_client(tmp_path: Path) -> None:
    async with connect_stdio(stdio_server(tmp_path, "--retention-hours", "0")) as session:
        created = await call(session, "execute_code", code="open('keep.txt', 'w').write('x')")
        workspace = tmp_path / "sessions" / created["session_id"]
        assert workspace.is_dir()

    assert not workspace.exists()


async def test_stdio_is_not_rate_limited_by_default(client: ClientSession) -> None:
    """The burst default (30) used to cap the one local agent; it must only bind HTTP clients."""
    refused = [
        text_of(result)
        for result in [await client.call_tool("list_runtimes", {}) for _ in range(45)]
        if result.is_error
    ]

    assert refused == []


async def test_stdio_rate_limit_when_asked_never_says_retry_in_zero(tmp_path: Path) -> None:
    # 50 calls/s: a refused call's wait is under 20 ms, which used to print as "0.0 s".
    limited = stdio_server(tmp_path, "--calls-per-minute", "3000", "--burst-calls", "1")
    async with connect_stdio(limited) as session:
        with anyio.fail_after(60):
            results = await _concurrently(session, 20)

    refused = [text_of(result) for result in results if result.is_error]
    assert refused, "20 concurrent calls against a burst of 1 were all allowed"
    waits = [float(text.split("retry in ", 1)[1].split(" s", 1)[0]) for text in refused]
    assert min(waits) >= 0.1, refused


async def _concurrently(session: ClientSession, count: int) -> list[CallToolResult]:
    results: list[CallToolResult] = []

    async def one() -> None:
        results.append(await session.call_tool("list_runtimes", {}))

    async with anyio.create_task_group() as tasks:
        for _ in range(count):
            tasks.start_soon(one)
    return results


_WRITE_PNG = """
import struct, zlib
def chunk(kind, data):
    body = kind + data
    return struct.pack('>I', len(data)) + body + struct.pack('>I', zlib.crc32(body))
pixels = zlib.compress(b'\\x00\\xff\\x00\\x00')
png = (b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0))
       + chunk(b'IDAT', pixels) + chunk(b'IEND', b''))
with open('plot.png', 'wb') as f:
    f.write(png)
print('saved')
"""


async def test_images_written_by_a_cell_come_back_as_image_content(
    client: ClientSession,
) -> None:
    result = await client.call_tool("execute_code", {"code": _WRITE_PNG})
    assert not result.is_error
    images = [item for item in result.content if item.type == "image"]
    assert len(images) == 1
    assert images[0].mime_type == "image/png"
    session_id = result.structured_content["session_id"]  # type: ignore[index]
    copy = await call(
        client, "read_file", session_id=session_id, path="plot.png", encoding="base64"
    )
    assert base64.b64decode(images[0].data) == base64.b64decode(copy["content"])
