"""A running cell's output, sent to the MCP client as progress notifications while it runs.

Only for a request that carries a progress token: the client asked for progress. Each
notification's ``message`` is one coalesced chunk (stderr chunks start with ``[stderr] ``) and
its ``progress`` the bytes of output so far, which only grows, as the protocol requires. The
final tool result is the same as without progress. The output callback runs on the guest's
thread, so chunks reach the event loop through its token; a client that cannot keep up only
delays its own notifications (the queue holds at most the capped output).
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
from mcp.server.mcpserver import Context

from sandbox.host.control import OutputCallback

STDERR_PREFIX = "[stderr] "
_log = logging.getLogger("sandbox.mcp")


class ProgressRelay:
    """Forwards one call's output chunks from the guest's thread to the client."""

    def __init__(self, ctx: Context[Any, Any]) -> None:
        self._ctx = ctx
        self._token = anyio.lowlevel.current_token()
        self._send, self._receive = anyio.create_memory_object_stream[str](math.inf)
        self._sent_bytes = 0

    @staticmethod
    def wanted(ctx: Context[Any, Any]) -> bool:
        """Whether the client asked for progress on this request (a progress token)."""
        meta = ctx.request_context.meta
        return bool(meta) and meta.get("progress_token") is not None  # type: ignore[union-attr]

    def on_output(self) -> OutputCallback:
        def deliver(stream: str, text: str) -> None:
            message = text if stream == "stdout" else STDERR_PREFIX + text
            # Once the call is over nobody forwards any more.
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                anyio.from_thread.run_sync(self._send.send_nowait, message, token=self._token)

        return deliver

    def close(self) -> None:
        """No more chunks; forward() sends what is queued and returns."""
        self._send.close()

    async def forward(self) -> None:
        """Send queued chunks until close(); a client error stops the forwarding, not the call."""
        async with self._receive:
            async for message in self._receive:
                self._sent_bytes += len(message.encode())
                try:
                    await self._ctx.report_progress(self._sent_bytes, None, message)
                except Exception:
                    _log.warning(
                        "sending output as progress failed; not sending more", exc_info=True
                    )
                    return
