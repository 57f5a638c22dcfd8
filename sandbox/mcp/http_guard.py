"""HTTP connection admission: a deadline for request heads, and a cap that sheds idle sockets.

uvicorn's h11 protocol gives a new connection no deadline for its request head: its keep-alive
timer only starts after a response, so a connection that sends half a request line is kept
forever, and a few thousand of them use up the process's file descriptors. uvicorn's own
``limit_concurrency`` does not help against that: it answers 503 once a request head has
arrived, which these connections never send. This protocol class adds the two missing pieces
and is passed to uvicorn as its ``http`` implementation:

- A connection must deliver a complete request head within ``header_timeout`` seconds of
  opening (or of the first byte of its next request, on a kept-alive connection), or it is
  closed. The same deadline covers the rest of a body nobody will read because the response
  already went out (a 401, say): uvicorn stops its keep-alive timer on every byte received,
  so a client trickling such a body would otherwise be kept forever. Idle kept-alive
  connections are closed by uvicorn's ``timeout_keep_alive``.
- At most ``max_connections`` are open. When one more arrives, the connection that has waited
  longest for a request head (a partial request, or an idle keep-alive) is closed to make
  room; only if every connection is in the middle of a request is the newcomer closed instead.
  So a flood of partial requests cannot keep a real client out, and the cap is set below the
  descriptor limit (``connection_cap``) so that accept() does not run out first.

Nothing on these paths logs, imports or opens a file: they run exactly when descriptors are
scarce.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

# Descriptors kept for everything but client sockets: the listener, logs, module cache, and
# per live interpreter its preopened directories and control files.
_BASE_RESERVE = 128
_PER_INTERPRETER = 8
_MIN_CONNECTIONS = 16


def connection_cap(requested: int, max_interpreters: int) -> int:
    """``requested``, lowered to leave the server descriptors for its own work."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    spare = soft - _BASE_RESERVE - _PER_INTERPRETER * max_interpreters
    return max(_MIN_CONNECTIONS, min(requested, spare))


def guarded_protocol(*, max_connections: int, header_timeout: float) -> type[H11Protocol]:
    """The protocol class to hand uvicorn, with this server's limits bound in."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"max_connections": max_connections, "header_timeout": header_timeout},
    )


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and connection shedding."""

    max_connections: ClassVar[int] = 1024
    header_timeout: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        # When this connection started waiting for a request head; None while serving one.
        self._waiting_since: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()
        if len(self.connections) > self.max_connections:
            self._shed()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._stalled():
            self._await_head()  # armed once: more bytes do not move the deadline
        else:
            self._head_arrived()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and self._waiting_since is None:
            self._waiting_since = self.loop.time()  # idle keep-alive: the first to shed
        elif self._stalled():
            self._await_head()  # answered, but the client still owes the rest of its body

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        if self._waiting_since is None:
            self._waiting_since = self.loop.time()
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_overdue)

    def _head_arrived(self) -> None:
        self._waiting_since = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _stalled(self) -> bool:
        """Waiting for a request head, or for the end of a body after the response was sent."""
        theirs = self.conn.their_state
        return theirs is h11.IDLE or (self.conn.our_state is h11.DONE and theirs is h11.SEND_BODY)

    def _head_overdue(self) -> None:
        self._head_timer = None
        if self._stalled() and not self.transport.is_closing():
            self.transport.close()

    def _shed(self) -> None:
        """Close the connection that has waited longest for a head, or else this new one."""
        victim: GuardedH11Protocol = self
        for other in self.connections:
            if (
                other is self
                or not isinstance(other, GuardedH11Protocol)
                or other._waiting_since is None
                or other.transport.is_closing()
            ):
                continue
            if victim is self or other._waiting_since < (victim._waiting_since or 0.0):
                victim = other
        victim.transport.close()
