"""Every tool result stays under the server's size cap, whatever the guest printed or wrote.

Against real server processes: over Streamable HTTP, where the official client refuses an
event over 1 MiB, and over stdio, where nothing else would stop a result of many megabytes.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp.client import ClientSession
from mcp_types import CallToolResult, EmbeddedResource, ImageContent, TextResourceContents
from test_mcp_support import (
    call,
    connect,
    connect_stdio,
    serving,
    stdio_server,
    text_of,
)

pytestmark = pytest.mark.anyio

_CAP = 256 * 1024
_KEPT = 1024 * 1024  # the policy's default stdout_max_bytes
_MIB = 1024 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _size(result: CallToolResult) -> int:
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


async def _read_all(session: ClientSession, session_id: str, path: str) -> str:
    """The whole file, page by page, checking that every page fits under the cap."""
    parts: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = await session.call_tool(
            "read_file", {"session_id": session_id, "path": path, "offset": offset}
        )
        assert not page.is_error, text_of(page)
        assert _size(page) <= _CAP
        content = page.structured_content
        assert content is not None and content["offset"] == offset
        parts.append(content["content"])
        offset = content["next_offset"]
    return "".join(parts)


async def test_megabytes_of_stdout_reach_the_official_http_client(tmp_path: Path) -> None:
    with serving(tmp_path) as (url, _), anyio.fail_after(180):
        async with connect(url) as session:
            result = await session.call_tool(
                "execute_code",
                {"code": "console.log('x'.repeat(4000000))", "language": "javascript"},
            )
            assert not result.is_error, text_of(result)
            assert _size(result) <= _CAP
            output = result.structured_content
            assert output is not None
            assert output["stdout_truncated"] is True
            assert output["stdout_bytes"] == 4_000_001
            assert output["stdout_kept_bytes"] == _KEPT
            assert 0 < output["stdout_shown_bytes"] < _KEPT
            assert output["stdout_file"] == ".sandbox-output/stdout.txt"
            assert "bytes left out here" in output["stdout"]
            text = text_of(result)
            assert f"4000001 bytes written, {_KEPT} kept" in text
            assert ".sandbox-output/stdout.txt" in text

            saved = await _read_all(session, output["session_id"], output["stdout_file"])
            assert saved == "x" * _KEPT


async def test_badly_escaping_output_and_thousands_of_files_still_fit(tmp_path: Path) -> None:
    # Control characters take six bytes each in JSON; 3000 long names make a long list.
    code = (
        "console.log('\\x01'.repeat(900000));"
        "console.error('\\x02'.repeat(900000));"
        "for (let i = 0; i < 3000; i++) writeText('n'.repeat(180) + i, '');"
    )
    async with connect_stdio(stdio_server(tmp_path)) as session:
        with anyio.fail_after(180):
            result = await session.call_tool(
                "execute_code", {"code": code, "language": "javascript"}
            )
            assert _size(result) <= _CAP
            output = result.structured_content
            assert output is not None
            assert output["success"] is True
            assert output["stdout_truncated"] and output["stderr_truncated"]
            assert output["stderr_file"] == ".sandbox-output/stderr.txt"
            listed = len(output["files_created"])
            assert listed + output["files_not_listed"] == 3000
            assert output["files_not_listed"] > 0

            info = await session.call_tool(
                "get_workspace_info", {"session_id": output["session_id"]}
            )
            assert not info.is_error and _size(info) <= _CAP
            workspace = info.structured_content
            assert workspace is not None and workspace["file_count"] == 3000
            assert workspace["system_file_count"] == 2  # the saved stdout and stderr
            saved = await _read_all(session, output["session_id"], output["stderr_file"])
            assert saved == "\x02" * 900_000 + "\n"


async def test_paging_never_splits_a_character(tmp_path: Path) -> None:
    text = "é€😀a" * 40_000  # 1, 2, 3 and 4 bytes per character
    async with connect_stdio(stdio_server(tmp_path)) as session:
        session_id = (await call(session, "create_session", language="javascript"))["session_id"]
        await call(session, "write_file", session_id=session_id, path="u.txt", content=text)
        assert await _read_all(session, session_id, "u.txt") == text
        small = await call(
            session, "read_file", session_id=session_id, path="u.txt", offset=0, length=20
        )
        assert small["content"] == "é€😀aé€😀a"[: len(small["content"])]
        assert small["length"] <= 20 and small["next_offset"] == small["length"]


_IMAGES = """
function save(name, size) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7) & 255;
  const file = std.open(name, 'wb');
  file.write(bytes.buffer, 0, size);
  file.close();
}
save('small.png', 300); save('small.gif', 200); save('small.webp', 100);
writeText('plot.svg', '<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>');
for (let i = 0; i < 4; i++) save('big' + i + '.png', 1500000);
"""


async def test_svg_is_text_and_images_go_inline_only_while_they_fit(tmp_path: Path) -> None:
    async with connect_stdio(stdio_server(tmp_path)) as session:
        with anyio.fail_after(120):
            result = await session.call_tool(
                "execute_code", {"code": _IMAGES, "language": "javascript"}
            )
    assert not result.is_error, text_of(result)
    assert _size(result) <= _CAP
    images = [block for block in result.content if isinstance(block, ImageContent)]
    assert sorted(image.mime_type for image in images) == ["image/gif", "image/png", "image/webp"]
    resources = [block for block in result.content if isinstance(block, EmbeddedResource)]
    assert len(resources) == 1
    svg = resources[0].resource
    assert isinstance(svg, TextResourceContents)
    assert svg.mime_type == "image/svg+xml" and svg.text.startswith("<svg")
    output = result.structured_content
    assert output is not None
    assert sorted(output["images_not_shown"]) == [f"big{i}.png" for i in range(4)]
    assert "images not shown" in text_of(result)
