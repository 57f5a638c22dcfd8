"""The MCP face of code mode: the tool a model reads the bridged servers' stubs from.

With ``--bridge``, a model does not call the bridged servers' tools one by one through us: it
reads their declarations once (``list_bridged_tools``) and writes one program that calls
several of them and combines the results inside execute_code, so only the program and its
answer cross the model's context.
"""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver.tools import Tool
from pydantic import Field

from sandbox.mcp.bridge import Bridge
from sandbox.mcp.descriptions import tool_hints
from sandbox.mcp.strict_arguments import strict
from sandbox.tools.stubs import python_stubs, typescript_stubs

INSTRUCTIONS = (
    " Other MCP servers' tools are bridged into the sandbox (code mode): call "
    "list_bridged_tools once for their declarations, then call several of them from one "
    "execute_code program (Python: from mcp_tools.<server> import <tool>; JavaScript: "
    "tools.<server>.<tool>({...})) and print only what you need."
)
_DESCRIPTION = (
    "Declarations of the bridged MCP servers' tools that code in execute_code can call: "
    "Python stubs (from mcp_tools.<server> import <tool>; keyword or positional arguments) "
    "and TypeScript-style ones (tools.<server>.<tool>({...}) in JavaScript), each with its "
    "docstring and JSON schema, plus each server's status. Results are the tool's "
    "structured content, else its text, else a list of content blocks (images as base64 "
    "with mimeType). A failing call raises in the guest (McpToolError, ConnectionError, "
    "TimeoutError)."
)


def bridge_tool(bridge: Bridge, sources: list[str]) -> Tool:
    """The ``list_bridged_tools`` MCP tool for ``bridge``; ``sources`` name its config files."""
    tools = bridge.host_tools()

    def list_bridged_tools(
        language: Annotated[
            Literal["python", "javascript"] | None,
            Field(description="Only this language's declarations (default: both)."),
        ] = None,
        server: Annotated[
            str | None, Field(description="Only this bridged server's tools (default: all).")
        ] = None,
    ) -> str:
        chosen = [
            tool for name, tool in tools.items() if server is None or name.startswith(server + ".")
        ]
        status = "\n".join(f"# {name}: {state}" for name, state in bridge.status().items())
        parts = [f"# bridged MCP servers (from {', '.join(sources)})\n{status}"]
        if language in (None, "python"):
            parts.append("## Python\n" + python_stubs(chosen))
        if language in (None, "javascript"):
            parts.append("## JavaScript\n" + typescript_stubs(chosen))
        return "\n\n".join(parts)

    return strict(
        Tool.from_function(
            list_bridged_tools,
            description=_DESCRIPTION,
            annotations=tool_hints("List bridged tools", read_only=True),
        )
    )
