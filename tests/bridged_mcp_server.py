"""A second MCP server, written with the official SDK, that the --bridge tests connect to.

Run as ``python tests/bridged_mcp_server.py``: stdio. Its tools are an issue tracker's, small
enough to check by eye: two to combine in one guest program, one returning an image, one slow.
"""

from __future__ import annotations

import base64
import time

from mcp.server.mcpserver import Image, MCPServer

# A 1x1 PNG.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
# Bodies as long as real issues' are, which is what a model reads when it calls tools itself.
_BODY = "Steps to reproduce, logs and a long discussion. " * 12
ISSUES = [
    {"number": 1, "title": "Crash on start", "labels": ["bug", "p1"], "body": _BODY},
    {"number": 2, "title": "Add dark mode", "labels": ["feature"], "body": _BODY},
    {"number": 3, "title": "Leak in parser", "labels": ["bug"], "body": _BODY},
]

server = MCPServer("tracker")


@server.tool(name="search-issues")
def search_issues(query: str, limit: int = 10) -> list[dict[str, object]]:
    """Issues whose title or labels contain ``query``."""
    found = [i for i in ISSUES if query in i["title"].lower() or query in i["labels"]]
    return found[:limit]


@server.tool()
def issue_comments(number: int) -> str:
    """The comment count of an issue, as text."""
    return f"issue {number} has {number * 2} comments"


@server.tool()
def chart() -> Image:
    """A chart of open issues (an image)."""
    return Image(data=PIXEL, format="png")


@server.tool()
def stall(seconds: float) -> str:
    """Answers after ``seconds``: a slow server."""
    time.sleep(seconds)
    return "done"


if __name__ == "__main__":
    server.run("stdio")
