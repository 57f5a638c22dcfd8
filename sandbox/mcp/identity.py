"""Which client a tool call comes from: the key that sessions, defaults and rate limits hang on.

Over stdio the process has exactly one client. Over Streamable HTTP a client is an MCP session:
the SDK's session manager routes a request by its ``Mcp-Session-Id`` header to the transport
that issued that random id, and refuses it when the bearer credential differs from the one that
opened the session, so the header names a session the request really belongs to.

The stateless 2026-07-28 protocol has no MCP session and bypasses that routing, so over HTTP
its requests would carry nothing that tells two holders of the shared token apart. Those are
refused with "unsupported protocol version" naming the handshake versions, which makes SDK
clients in auto mode fall back to the handshake and get a session of their own.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import UNSUPPORTED_PROTOCOL_VERSION, UnsupportedProtocolVersionErrorData
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

_STDIO_CLIENT = "stdio"
_SESSION_HEADER = "mcp-session-id"


def client_key(ctx: Context[Any, Any]) -> str:
    """A stable, opaque key for the client that made the current request."""
    headers = ctx.headers
    if headers is None:
        return _STDIO_CLIENT
    session_id = headers.get(_SESSION_HEADER)
    if not session_id or ctx.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
        raise ToolError(
            "this server keeps state per MCP session: connect with the initialize handshake "
            f"(protocol {HANDSHAKE_PROTOCOL_VERSIONS[-1]}) so requests carry an Mcp-Session-Id"
        )
    return f"mcp-session:{session_id}"


async def require_mcp_session_over_http(
    ctx: ServerRequestContext[Any, Any], call_next: CallNext
) -> HandlerResult:
    """Server middleware: refuse session-less (2026-07-28) requests that arrive over HTTP."""
    handshake_era = ctx.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
    if ctx.request is not None and ctx.request_id is not None and not handshake_era:
        raise MCPError(
            code=UNSUPPORTED_PROTOCOL_VERSION,
            message="this server needs an MCP session over HTTP; use the initialize handshake",
            data=UnsupportedProtocolVersionErrorData(
                supported=list(HANDSHAKE_PROTOCOL_VERSIONS), requested=ctx.protocol_version
            ).model_dump(mode="json"),
        )
    return await call_next(ctx)
