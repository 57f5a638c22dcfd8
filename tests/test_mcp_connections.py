"""The HTTP server against unauthenticated connection floods, with real sockets on 127.0.0.1.

A partial request head costs the attacker one socket and the server one file descriptor; the
server must drop such connections after its header timeout, shed them when its connection cap
is reached, and keep serving when the process runs out of descriptors anyway.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
from test_mcp_support import call, connect, eventually, serving

pytestmark = pytest.mark.anyio

_PARTIAL_HEAD = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _limit_descriptors(count: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))

    return apply


@contextmanager
def _partial_requests(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that each send the start of a request head and then stall."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(sock)
            with contextlib.suppress(OSError):  # already shed by the server: allowed
                sock.sendall(_PARTIAL_HEAD)
            sock.setblocking(False)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _open_descriptors(process: subprocess.Popen[bytes]) -> int:
    return len(os.listdir(f"/proc/{process.pid}/fd"))


async def _served(url: str) -> None:
    async with connect(url) as session:
        ran = await call(session, "execute_code", code="console.log(1 + 1)", language="javascript")
        assert ran["stdout"] == "2\n"


async def test_stalled_request_heads_time_out(tmp_path: Path) -> None:
    with serving(tmp_path, "--header-timeout", "2") as (url, _):
        started = time.monotonic()
        with _partial_requests(_port_of(url), 5) as stalled, anyio.fail_after(30):
            await eventually(
                lambda: all(_closed_by_server(sock) for sock in stalled),
                "the server dropped the stalled connections",
            )
            assert time.monotonic() - started >= 1.5


async def test_an_unread_body_cannot_be_trickled_forever(tmp_path: Path) -> None:
    """After a 401 the body is never read; sending it a byte at a time must not keep the
    connection (uvicorn stops its keep-alive timer on every byte it receives)."""
    head = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
    with (
        serving(tmp_path, "--header-timeout", "2") as (url, _),
        socket.create_connection(("127.0.0.1", _port_of(url)), timeout=10) as sock,
    ):
        sock.sendall(head + b"{")
        assert sock.recv(1024).startswith(b"HTTP/1.1 401")
        sock.setblocking(False)

        def trickled_and_dropped() -> bool:
            with contextlib.suppress(OSError):
                sock.send(b" ")
            return _closed_by_server(sock)

        with anyio.fail_after(30):
            await eventually(trickled_and_dropped, "the trickling connection was dropped")


async def test_a_flood_past_the_descriptor_limit_is_shed_and_real_clients_are_served(
    tmp_path: Path,
) -> None:
    # 512 descriptors leave room for ~350 connections; 800 stalled ones are more than both.
    with (
        serving(
            tmp_path,
            "--header-timeout",
            "3",
            "--max-sessions",
            "4",
            "--max-sessions-per-client",
            "2",
            preexec_fn=_limit_descriptors(512),
        ) as (url, process),
        _partial_requests(_port_of(url), 800) as stalled,
        anyio.fail_after(120),
    ):
        await _served(url)  # during the flood: the oldest stalled connections make room
        await eventually(
            lambda: all(_closed_by_server(sock) for sock in stalled),
            "every stalled connection was shed or timed out",
        )
        assert process.poll() is None
        assert _open_descriptors(process) < 200
        await _served(url)


async def test_the_server_survives_running_out_of_descriptors(tmp_path: Path) -> None:
    """accept() failing with EMFILE used to end the event loop through a lazy import."""
    with serving(tmp_path) as (url, process), anyio.fail_after(120):
        await _served(url)  # everything a call needs is loaded and booted
        headroom = _open_descriptors(process) + 40
        resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (headroom, headroom))
        log = next(tmp_path.glob("server-*.log"))
        with _partial_requests(_port_of(url), 200):
            await eventually(
                lambda: "Too many open files" in log.read_text(), "accept() ran out of descriptors"
            )
            assert process.poll() is None
        await eventually(
            lambda: _open_descriptors(process) < headroom - 20,
            "the server closed its ends of the stalled connections",
        )
        await _served(url)
        assert process.poll() is None
