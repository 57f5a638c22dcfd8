"""MCP code mode end to end: our server with --bridge to a second, SDK-written MCP server.

Both servers are real processes; the official client drives ours over stdio, and guest
programs in one execute_code call several bridged tools and combine their results.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp.client import ClientSession
from test_mcp_support import REPO, call, connect_stdio, stdio_server, text_of

from sandbox.mcp.auth import ServerConfigError
from sandbox.mcp.bridge_config import discover, load_bridge_file

pytestmark = pytest.mark.anyio
_TRACKER = str(REPO / "tests" / "bridged_mcp_server.py")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def servers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bridge") / "servers.json"
    servers = {
        "tracker": {"command": sys.executable, "args": [_TRACKER]},
        "down": {"command": "/nonexistent/mcp-server"},
    }
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


@pytest.fixture
async def client(servers_file: Path, tmp_path: Path) -> AsyncIterator[ClientSession]:
    server = stdio_server(tmp_path / "home", "--bridge", str(servers_file), "--bridge-timeout", "1")
    async with connect_stdio(server) as session:
        yield session


async def test_guest_program_combines_two_bridged_tools(client: ClientSession) -> None:
    listing = await client.call_tool("list_bridged_tools", {})
    stubs = text_of(listing)
    assert "def search_issues(query: str, limit: int | None = None) -> Any:" in stubs
    assert "declare namespace tools.tracker" in stubs
    assert "down: unavailable" in stubs
    code = (
        "from mcp_tools.tracker import search_issues, issue_comments\n"
        "bugs = search_issues(query='bug')\n"
        "counts = [int(issue_comments(number=i['number']).split()[3]) for i in bugs]\n"
        "print([i['number'] for i in bugs], sum(counts))"
    )
    result = await call(client, "execute_code", code=code, language="python")
    assert result["stdout"] == "[1, 3] 8\n", result["stderr"]


async def test_javascript_gets_images_as_data_and_clear_errors(client: ClientSession) -> None:
    code = (
        "const [image] = tools.tracker.chart();\n"
        "const titles = tools.tracker.search_issues({query: 'feature'}).map(i => i.title);\n"
        "let slow;\n"
        "try { tools.tracker.stall({seconds: 5}) } catch (e) { slow = `${e.name}: ${e.message}` }\n"
        "console.log(image.type, image.mimeType, image.data.length > 0, titles[0]);\n"
        "console.log(slow);"
    )
    result = await call(client, "execute_code", code=code, language="javascript")
    lines = result["stdout"].splitlines()
    assert lines[0] == "image image/png true Add dark mode", result["stderr"]
    assert lines[1].startswith("TimeoutError: tracker.stall: the MCP server did not answer")
    missing = await client.call_tool(
        "execute_code", {"code": "tools.down.anything()", "language": "javascript"}
    )
    assert missing.is_error and "no tool named 'down.anything'" in text_of(missing)


def test_bridge_file_errors_name_the_server(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"mcpServers": {"gh": {"args": ["x"]}}}))
    with pytest.raises(ServerConfigError, match=r"mcpServers\.gh: needs \"command\""):
        load_bridge_file(path)
    path.write_text("[]")
    with pytest.raises(ServerConfigError, match="expected"):
        load_bridge_file(path)


def test_discovery_reads_client_files_project_first(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    (project / ".vscode").mkdir(parents=True)
    (home / ".codex").mkdir(parents=True)
    (home / ".config/zed").mkdir(parents=True)
    (project / ".mcp.json").write_text(json.dumps({"mcpServers": {"gh": {"command": "gh-a"}}}))
    (project / ".vscode/mcp.json").write_text(
        '{\n  // VS Code allows comments\n  "servers": {"web": {"type": "http", '
        '"url": "http://127.0.0.1:9/mcp",}},\n}'
    )
    (home / ".codex/config.toml").write_text(
        '[mcp_servers.gh]\ncommand = "gh-b"\n[mcp_servers.notes]\ncommand = "notes"\n'
        'args = ["--stdio"]\n'
    )
    (home / ".config/zed/settings.json").write_text(
        json.dumps({"context_servers": {"me": {"command": {"path": "llm-wasm-mcp"}}}})
    )
    servers, used = discover(project, home)
    assert set(servers) == {"gh", "web", "notes"}  # "me" is this server itself: skipped
    assert servers["gh"].command == "gh-a" and servers["notes"].args == ("--stdio",)
    assert servers["web"].url == "http://127.0.0.1:9/mcp"
    assert used == [
        str(project / ".mcp.json"),
        str(project / ".vscode/mcp.json"),
        str(home / ".codex/config.toml"),
    ]


async def test_a_third_party_server_is_bridged(tmp_path: Path) -> None:
    """The reference time server (PyPI's mcp-server-time, not ours): one program calls both of
    its tools and combines what they return, in each guest language."""
    servers = tmp_path / "servers.json"
    time_server = {"command": sys.executable, "args": ["-m", "mcp_server_time"]}
    servers.write_text(json.dumps({"mcpServers": {"clock": time_server}}))
    server = stdio_server(tmp_path / "home", "--bridge", str(servers))
    async with connect_stdio(server) as session:
        stubs = text_of(await session.call_tool("list_bridged_tools", {}))
        assert "def convert_time(" in stubs and "def get_current_time(" in stubs
        python = (
            "from mcp_tools.clock import convert_time, get_current_time\n"
            "now = get_current_time(timezone='UTC')\n"
            "moved = convert_time(source_timezone='Europe/Paris', time='12:00',\n"
            "                     target_timezone='Asia/Tokyo')\n"
            "print(now['timezone'], moved['target']['datetime'][11:16], moved['time_difference'])"
        )
        result = await call(session, "execute_code", code=python, language="python")
        assert result["stdout"] == "UTC 20:00 +8.0h\n", result["stderr"]
        javascript = (
            "const now = tools.clock.get_current_time({timezone: 'Asia/Tokyo'});\n"
            "const moved = tools.clock.convert_time({source_timezone: 'UTC', time: '00:00',\n"
            "                                        target_timezone: now.timezone});\n"
            "console.log(now.timezone, moved.target.datetime.slice(11, 16));"
        )
        result = await call(session, "execute_code", code=javascript, language="javascript")
        assert result["stdout"] == "Asia/Tokyo 09:00\n", result["stderr"]
