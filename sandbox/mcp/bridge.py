"""MCP code mode: other MCP servers' tools as functions guest code calls (``--bridge``).

The servers are named in the shape MCP clients use, ``{"mcpServers": {name: {"command",
"args", "env"} | {"url", "headers"}}}``, and connected once at start-up with the official
client (stdio or Streamable HTTP). Each of their tools becomes a host tool named
``<server>.<tool>``: ``from mcp_tools.github import search_issues`` in Python,
``tools.github.search_issues({...})`` in JavaScript. The client sessions live on the loop
coroutine tools run on (``sandbox/tools/runner.py``), so a guest's call is a request on that
session, bounded by ``call_timeout`` and by the cell's deadline; a server that is down or went
away answers every call with a ConnectionError naming it, never a hung cell.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp.client import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from sandbox.mcp.bridge_config import BridgedServer
from sandbox.tools.registry import HostTool, check_name, from_schema
from sandbox.tools.runner import on_tool_loop

_log = logging.getLogger(__name__)
_NOT_IDENTIFIER = re.compile(r"\W")


class McpToolError(Exception):
    """A bridged tool answered with ``isError``: its text is the message."""


@dataclass
class _Link:
    """One bridged server: its session while connected, else why not."""

    server: BridgedServer
    session: ClientSession | None = None
    problem: str = "not connected yet"
    tools: list[Any] = field(default_factory=list)


class Bridge:
    """The bridged servers' client sessions and their tools as HostTools."""

    def __init__(
        self,
        servers: Mapping[str, BridgedServer],
        *,
        call_timeout: float = 30.0,
        connect_timeout: float = 20.0,
    ) -> None:
        self._links = {guest_name(name): _Link(server) for name, server in servers.items()}
        self._call_timeout = call_timeout
        self._connect_timeout = connect_timeout
        self._stop: asyncio.Event | None = None
        self._holders: list[asyncio.Future[None]] = []

    def start(self) -> None:
        """Connect every server (concurrently); one that fails is reported, not fatal."""
        on_tool_loop(self._connect_all()).result()
        for name, link in self._links.items():
            if link.session is None:
                _log.warning("bridged MCP server %r is %s", name, link.problem)
            else:
                _log.info("bridged MCP server %r: %d tools", name, len(link.tools))

    def close(self) -> None:
        """End the sessions (stdio servers are stopped by their client)."""
        if self._stop is not None:
            on_tool_loop(self._close_all()).result(timeout=10)

    def status(self) -> dict[str, str]:
        """Server name -> "connected (N tools)" or why it is unavailable."""
        return {
            name: f"connected ({len(link.tools)} tools)"
            if link.session is not None
            else f"unavailable: {link.problem}"
            for name, link in self._links.items()
        }

    def host_tools(self) -> dict[str, HostTool]:
        made: dict[str, HostTool] = {}
        for server, link in self._links.items():
            for tool in link.tools:
                name = f"{server}.{guest_name(tool.name)}"
                try:
                    check_name(name)
                except ValueError as error:
                    _log.warning("bridged tool %r skipped: %s", tool.name, error)
                    continue
                made[name] = from_schema(
                    name,
                    _described(tool),
                    tool.input_schema or {},
                    self._caller(server, tool.name, _wraps_result(tool.output_schema)),
                )
        return made

    def _caller(self, server: str, tool: str, wrapped: bool) -> Any:
        async def call(**arguments: Any) -> Any:
            link = self._links[server]
            if link.session is None:
                raise ConnectionError(f"the bridged MCP server {server!r} is {link.problem}")
            try:
                with anyio.fail_after(self._call_timeout):
                    result = await link.session.call_tool(tool, arguments)
            except TimeoutError:
                raise TimeoutError(
                    f"{server}.{tool}: the MCP server did not answer within "
                    f"{self._call_timeout:g} s"
                ) from None
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, EOFError) as error:
                link.session, link.problem = None, f"disconnected ({type(error).__name__})"
                raise ConnectionError(f"the bridged MCP server {server!r} went away") from None
            return _guest_value(result, wrapped)

        return call

    async def _connect_all(self) -> None:
        self._stop = asyncio.Event()
        waits = []
        for link in self._links.values():
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._holders.append(asyncio.ensure_future(self._hold(link, ready)))
            waits.append(ready)
        await asyncio.gather(*waits, return_exceptions=True)

    async def _close_all(self) -> None:
        assert self._stop is not None
        self._stop.set()
        await asyncio.gather(*self._holders, return_exceptions=True)

    async def _hold(self, link: _Link, ready: asyncio.Future[None]) -> None:
        """Open the session, list the tools, and keep it open until close()."""
        assert self._stop is not None
        try:
            async with AsyncExitStack() as stack:
                # Entered outside the timeout's scope: an anyio scope must close after them.
                read, write = await stack.enter_async_context(_transport(link.server))
                session = await stack.enter_async_context(ClientSession(read, write))
                with anyio.fail_after(self._connect_timeout):
                    await session.initialize()
                    link.tools = list((await session.list_tools()).tools)
                link.session, link.problem = session, ""
                ready.set_result(None)
                await self._stop.wait()
                link.session = None
        except BaseException as error:
            link.session = None
            link.problem = f"unavailable ({_cause(error)})"
            if not ready.done():
                ready.set_result(None)
            if isinstance(error, asyncio.CancelledError):
                raise


@asynccontextmanager
async def _transport(server: BridgedServer) -> AsyncIterator[tuple[Any, Any]]:
    if server.url is not None:
        async with (
            httpx2.AsyncClient(headers=dict(server.headers), timeout=30) as http,
            streamable_http_client(server.url, http_client=http) as streams,
        ):
            yield streams[0], streams[1]
        return
    assert server.command is not None
    parameters = StdioServerParameters(
        command=server.command,
        args=list(server.args),
        env=dict(server.env) or None,
        cwd=str(server.cwd) if server.cwd is not None else None,
    )
    async with stdio_client(parameters) as streams:
        yield streams[0], streams[1]


def _cause(error: BaseException) -> str:
    """The first real error inside anyio's exception groups, as "Type: message"."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"[:300]


def guest_name(name: str) -> str:
    """``name`` made an identifier a guest can spell (``search-issues`` -> ``search_issues``)."""
    text = _NOT_IDENTIFIER.sub("_", name).strip("_") or "tool"
    return f"t{text}" if text[0].isdigit() else text


def _described(tool: Any) -> str:
    """The tool's description, and what its value is (the output schema, unwrapped)."""
    schema = tool.output_schema
    if not schema:
        return str(tool.description or "")
    if _wraps_result(schema):
        schema = schema["properties"]["result"]
    returns = json.dumps(schema, sort_keys=True)
    return f"{tool.description or ''}\n\nReturns (JSON schema): {returns}".strip()


def _wraps_result(output_schema: dict[str, Any] | None) -> bool:
    """Whether structured results come as ``{"result": value}``: how servers (the Python SDK
    among them) return a value that is not an object, which the guest gets unwrapped."""
    properties = (output_schema or {}).get("properties") or {}
    return list(properties) == ["result"]


def _guest_value(result: Any, wrapped: bool) -> Any:
    """What the guest gets: the structured content, else the text of a single text block,
    else every block as data (images and audio as base64 with their mime type)."""
    blocks = [
        block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content
    ]
    if result.is_error:
        text = " ".join(block.get("text", "") for block in blocks).strip()
        raise McpToolError(text or "the bridged tool reported an error")
    if result.structured_content is not None:
        structured = result.structured_content
        return structured["result"] if wrapped and "result" in structured else structured
    if len(blocks) == 1 and blocks[0].get("type") == "text":
        return blocks[0]["text"]
    return blocks
