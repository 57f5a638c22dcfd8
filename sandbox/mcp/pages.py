"""read_file's pages: a byte range of a file that fits in one tool result.

The content goes out twice (text block and structured content) and base64 adds a third, so a
page is at most a quarter of the result cap; text that escapes badly in JSON gets a smaller
page. UTF-8 pages end on a character boundary, so that each page decodes by itself and the
pages join into the file.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Literal

from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult

from sandbox.mcp.limits import ServerLimits
from sandbox.mcp.models import FileContentOutput
from sandbox.mcp.results import assemble, complete_utf8, first_fitting


def file_page(
    *,
    session_id: str,
    path: str,
    data: bytes,
    encoding: Literal["utf-8", "base64"],
    offset: int,
    length: int | None,
    limits: ServerLimits,
) -> CallToolResult:
    """The bytes of ``data`` from ``offset``, as many as ``length`` allows and the cap fits."""
    if offset > len(data):
        raise ToolError(f"offset {offset} is past the end of {path!r} ({len(data)} bytes)")
    largest = max_page_bytes(limits)
    wanted = min(length if length is not None else largest, largest)
    if encoding == "utf-8" and offset < len(data) and data[offset] & 0xC0 == 0x80:
        raise ToolError(
            f"offset {offset} falls inside a UTF-8 character of {path!r}; pass the next_offset "
            "of the previous page, or read with encoding='base64'"
        )

    def attempt(size: int) -> Callable[[], CallToolResult]:
        return lambda: _page(
            session_id, path, data, encoding, offset, size, legacy_text=limits.legacy_text_content
        )

    sizes = [wanted >> shift for shift in range(8) if wanted >> shift >= 64 or shift == 0]
    return first_fitting(limits, [attempt(size) for size in sizes])


def max_page_bytes(limits: ServerLimits) -> int:
    """The most read_file returns at once: the content goes out twice, base64 adds a third."""
    return limits.max_result_bytes // 4


def _page(
    session_id: str,
    path: str,
    data: bytes,
    encoding: Literal["utf-8", "base64"],
    offset: int,
    size: int,
    *,
    legacy_text: bool,
) -> CallToolResult:
    chunk = data[offset : offset + size]
    if encoding == "base64":
        content = base64.b64encode(chunk).decode("ascii")
    else:
        if offset + len(chunk) < len(data):
            chunk = chunk[: complete_utf8(chunk)]
        try:
            content = chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(
                f"{path!r} is not UTF-8 text; call read_file again with encoding='base64'"
            ) from None
    end = offset + len(chunk)
    next_offset = end if end < len(data) else None
    output = FileContentOutput(
        session_id=session_id,
        path=path,
        encoding=encoding,
        content=content,
        size_bytes=len(data),
        offset=offset,
        length=len(chunk),
        next_offset=next_offset,
    )
    text = content
    if next_offset is not None or offset > 0:
        text += f"\n[bytes {offset}-{end} of {len(data)}" + (
            f"; read_file with offset={next_offset} for more]" if next_offset else "]"
        )
    return assemble(output, text, legacy_text=legacy_text)
