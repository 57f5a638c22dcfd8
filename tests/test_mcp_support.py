"""Helpers shared by the MCP test modules (no tests here): calling tools and reading results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp.client import ClientSession
from mcp_types import CallToolResult, TextContent

REPO = Path(__file__).resolve().parents[1]


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Structured content of a successful call; fails the test on a tool error."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> CallToolResult:
    """The result of a call that must fail as an MCP tool error."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, f"{tool} unexpectedly succeeded: {text_of(result)}"
    return result


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))
