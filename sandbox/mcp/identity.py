"""Who a call comes from: the client (one connection) and the principal (one credential).

A **client** is the key that sessions, defaults, metrics and rate limits hang on while it is
connected. Over stdio the process has exactly one client. Over Streamable HTTP a client is an
MCP session: the SDK's session manager routes a request by its ``Mcp-Session-Id`` header to
the transport that issued that random id, and refuses it when the bearer credential differs
from the one that opened the session, so the id names a session the request really belongs
to. The SDK closes that transport when the client sends DELETE, when it stays idle past the
SDK's session timeout, and when the server stops; ``track_http_clients`` hooks the connection's
own exit stack, so the server learns of every one of those ends.

A **principal** is what survives a disconnect or a restart: the credential. Sessions whose
client went away stay reattachable for a while by any client of the same principal. It is a
slow salted hash of the bearer token, so the owner records kept beside the workspaces never
hold the token or anything that makes guessing it cheap.

The stateless 2026-07-28 protocol has no MCP session, so over HTTP its requests would carry
nothing that tells two holders of the shared token apart. Those are refused with "unsupported
protocol version" naming the handshake versions, which makes SDK clients in auto mode fall
back to the handshake and get a session of their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import UNSUPPORTED_PROTOCOL_VERSION, UnsupportedProtocolVersionErrorData
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

Transport = Literal["stdio", "http"]

LOCAL_CLIENT = "local"
LOCAL_PRINCIPAL = "local"
_ANONYMOUS_HTTP_PRINCIPAL = "http-anonymous"
_TRACKED = "llm_wasm_sandbox.client"
_SESSION_HEADER = "mcp-session-id"
# A fixed salt is enough: the hash only has to stop a reader of the owner records from
# recovering or cheaply guessing the token, and one server holds one token.
_TOKEN_SALT = b"llm-wasm-sandbox/mcp-owner/v1"
_TOKEN_ROUNDS = 200_000


def principal_for(transport: Transport, auth_token: str | None) -> str:
    """The owner identity recorded for the sessions this server creates.

    stdio serves the local user who started it; HTTP serves whoever holds the token (or,
    without one, anybody on loopback, who are all the same principal).
    """
    if transport == "stdio":
        return LOCAL_PRINCIPAL
    if auth_token is None:
        return _ANONYMOUS_HTTP_PRINCIPAL
    digest = hashlib.pbkdf2_hmac("sha256", auth_token.encode("utf-8"), _TOKEN_SALT, _TOKEN_ROUNDS)
    return f"token:pbkdf2-sha256:{digest.hex()}"


def client_key(ctx: Context[Any, Any]) -> str:
    """A stable, opaque key for the client that made the current request."""
    headers = ctx.headers
    if headers is None:
        return LOCAL_CLIENT
    session_id = headers.get(_SESSION_HEADER)
    if not session_id or ctx.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
        raise ToolError(
            "this server keeps state per MCP session: connect with the initialize handshake "
            f"(protocol {HANDSHAKE_PROTOCOL_VERSIONS[-1]}) so requests carry an Mcp-Session-Id"
        )
    return _http_client(session_id)


def _http_client(session_id: str) -> str:
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


def track_http_clients(ended: Callable[[str], Awaitable[None]]) -> ServerMiddleware[Any]:
    """Server middleware: call ``ended`` once with the client's key when its MCP session ends.

    The end is a callback on ``connection.exit_stack``, which the SDK unwinds (shielded) when
    the MCP session's transport closes, whatever closed it. stdio connections carry no
    session id and are not tracked: the one local client lasts as long as the process.
    """

    async def middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        connection = _connection_of(ctx)
        if (
            connection is not None
            and connection.session_id is not None
            and _TRACKED not in connection.state
        ):
            client = _http_client(connection.session_id)
            connection.state[_TRACKED] = client
            connection.exit_stack.push_async_callback(ended, client)
        return await call_next(ctx)

    return middleware


def _connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection | None:
    """The request's per-client Connection, whose exit stack is the SDK's teardown hook.

    The SDK documents ``connection.exit_stack`` for per-connection cleanup "from handlers or
    middleware", but in mcp 2.3 ServerRequestContext does not expose the connection yet (a
    TODO in mcp.server.context); its ServerSession holds it. A newer SDK that adds
    ``ctx.connection`` is used as is.
    """
    connection = getattr(ctx, "connection", None) or getattr(ctx.session, "_connection", None)
    return connection if isinstance(connection, Connection) else None
