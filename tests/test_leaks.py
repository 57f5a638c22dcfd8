"""Closed interpreters give everything back: their wasmtime Store, memory and open files.

A guest's host callbacks live in wasmtime-py's process-wide registry for as long as its native
Store does; they reach the Store back through the guest, a cycle the garbage collector cannot
see. These tests boot real guests, close them (or let a limit stop them), and check that no
Store made for them is still alive, that their files are really closed, and that the resident
set stays flat: a leaked CPython guest costs about 6 MiB.

Stores are told apart by the memory limit they are given, unique to each test, so spares that
other tests' warm pools boot meanwhile are never counted.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterator

import pytest
import wasmtime

from sandbox import (
    ExecutionPolicy,
    RuntimeType,
    Sandbox,
    create_sandbox,
    delete_session_workspace,
)
from sandbox.host import recycler
from sandbox.host.pool import DEFAULT_POOL_SIZE
from sandbox.runtimes import runtime_for

_MIB = 1024 * 1024
_CELLS = {RuntimeType.PYTHON: "x = 1", RuntimeType.JAVASCRIPT: "let x = 1;"}
# Cells that end their interpreter, so the next call boots a fresh one (a limit-stop reset).
_STOPS: dict[RuntimeType, tuple[int | None, str]] = {  # (fuel budget, cell)
    RuntimeType.PYTHON: (None, "import os; os._exit(3)"),
    RuntimeType.JAVASCRIPT: (20_000_000, "for (;;) {}"),
}
_FINISH_SECONDS = 30.0  # generous: a closed guest unwinds in milliseconds
_unique_memory = iter(range(200 * _MIB, 300 * _MIB, 64 * 1024))


class _Ended:
    """A guest's end: its Store closed (reactor guests), or its own thread gone (parked ones)."""

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.closed = False

    def is_alive(self) -> bool:
        if self.thread is threading.current_thread():
            return not self.closed  # a reactor guest: it ends when its Store is closed
        return self.thread.is_alive()  # a parked guest's thread still unwinds after the close

    def join(self, timeout: float) -> None:
        if self.thread is threading.current_thread():
            return  # a reactor guest runs on its caller's thread: it ends by being closed
        self.thread.join(timeout)


class StoreTracker:
    """Every wasmtime.Store given ``memory_bytes`` as its limit, and how its guest ends."""

    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self.guests: list[tuple[weakref.ref[wasmtime.Store], _Ended]] = []
        self._by_store: dict[int, _Ended] = {}

    def add(self, store: wasmtime.Store) -> None:
        if any(tracked() is store for tracked, _ending in self.guests):
            return  # a recycled interpreter's Store, given to its next sandbox
        ending = _Ended(threading.current_thread())
        self._by_store[id(store)] = ending
        self.guests.append((weakref.ref(store), ending))

    def closed(self, store: wasmtime.Store) -> None:
        ending = self._by_store.get(id(store))
        if ending is not None:
            ending.closed = True

    def alive(self) -> int:
        """Stores still alive, of guests whose thread is running (pool spares) or not."""
        gc.collect()
        return sum(store() is not None for store, _thread in self.guests)

    def ended(self) -> int:
        return sum(not thread.is_alive() for _store, thread in self.guests)

    def outliving_their_guest(self) -> int:
        """Stores still alive although the guest thread that used them has ended."""
        # Threads first: one ending after the collection could leave a cycle not yet collected.
        ended = [store for store, thread in self.guests if not thread.is_alive()]
        gc.collect()
        return sum(store() is not None for store in ended)

    def finish(self, still_running: int) -> None:
        """Wait until at most ``still_running`` guest threads of ours are left (pool spares).

        Guest threads end asynchronously after close(); joining them is the synchronisation.
        """
        deadline = time.monotonic() + _FINISH_SECONDS
        while time.monotonic() < deadline:
            running = [thread for _store, thread in self.guests if thread.is_alive()]
            if len(running) <= still_running:
                return
            for thread in running:
                thread.join(max(0.0, min(0.05, deadline - time.monotonic())))


@pytest.fixture
def tracker(monkeypatch: pytest.MonkeyPatch) -> StoreTracker:
    tracked = StoreTracker(next(_unique_memory))

    class TrackedStore(wasmtime.Store):
        def set_limits(
            self,
            memory_size: int = -1,
            table_elements: int = -1,
            instances: int = -1,
            tables: int = -1,
            memories: int = -1,
        ) -> None:
            if memory_size == tracked.memory_bytes:
                tracked.add(self)
            super().set_limits(memory_size, table_elements, instances, tables, memories)

        def close(self) -> None:
            tracked.closed(self)
            super().close()

    monkeypatch.setattr(wasmtime, "Store", TrackedStore)
    # Interpreters other tests closed would serve this test's sandboxes with their own Stores.
    python_recycler = runtime_for(RuntimeType.PYTHON).recycler
    assert python_recycler is not None
    python_recycler.clear()
    return tracked


def _policy(tracker: StoreTracker, fuel_budget: int | None = None) -> ExecutionPolicy:
    if fuel_budget is None:  # the configured default
        return ExecutionPolicy(memory_bytes=tracker.memory_bytes)
    return ExecutionPolicy(memory_bytes=tracker.memory_bytes, fuel_budget=fuel_budget)


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _open_paths() -> list[str]:
    paths = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue  # closed meanwhile (the directory listing's own descriptor)
    return paths


def _cycle(runtime: RuntimeType, policy: ExecutionPolicy) -> None:
    with create_sandbox(runtime, policy) as sandbox:
        assert sandbox.execute(_CELLS[runtime]).success


@pytest.fixture
def stopping_sandbox(runtime: RuntimeType, tracker: StoreTracker) -> Iterator[tuple[Sandbox, str]]:
    fuel_budget, code = _STOPS[runtime]
    # A named session boots its own interpreters, none from a warm pool.
    with create_sandbox(runtime, _policy(tracker, fuel_budget), f"leaks-{uuid.uuid4()}") as sandbox:
        yield sandbox, code


def _stop(sandbox: Sandbox, code: str) -> None:
    result = sandbox.execute(code)
    assert result.metadata.get("session_reset"), result.metadata


def _kept(runtime: RuntimeType) -> int:
    """Interpreters kept for the next sandboxes: a warm pool's spares (JavaScript), closed
    interpreters reset for reuse (Python, sandbox/host/recycler.py)."""
    return DEFAULT_POOL_SIZE if runtime is RuntimeType.JAVASCRIPT else recycler.CAPACITY


def test_closed_sandboxes_free_their_stores(runtime: RuntimeType, tracker: StoreTracker) -> None:
    policy = _policy(tracker)
    for _ in range(20):
        _cycle(runtime, policy)

    tracker.finish(still_running=_kept(runtime))

    # Every Store made for this policy is closed but the few kept for the next sandboxes.
    assert tracker.alive() <= _kept(runtime)
    assert tracker.outliving_their_guest() == 0


def test_limit_stop_resets_free_their_stores(
    stopping_sandbox: tuple[Sandbox, str], tracker: StoreTracker, runtime: RuntimeType
) -> None:
    sandbox, code = stopping_sandbox
    for _ in range(20):
        _stop(sandbox, code)
    sandbox.close()

    tracker.finish(still_running=0)

    assert tracker.ended() >= 20
    assert tracker.alive() <= (_kept(runtime) if runtime is RuntimeType.PYTHON else 0)


def test_closed_guest_closes_files_it_held_open(tracker: StoreTracker) -> None:
    session_id = f"leaks-{uuid.uuid4()}"
    with create_sandbox(RuntimeType.PYTHON, _policy(tracker), session_id) as sandbox:
        held = sandbox.execute("held = open('/app/held.bin', 'wb'); held.write(b'x' * 100_000)")
        assert held.success, held.stderr
        session_directory = str(sandbox.workspace_path.parent)
    delete_session_workspace(session_id)

    tracker.finish(still_running=0)

    # An open descriptor would keep the deleted file's blocks allocated on the host disk.
    assert [path for path in _open_paths() if path.startswith(session_directory)] == []
    assert tracker.alive() <= _kept(RuntimeType.PYTHON)


def test_rss_stays_flat_over_python_cycles(tracker: StoreTracker) -> None:
    policy = _policy(tracker)
    for _ in range(5):  # warm-up: compiled module, pool, allocator arenas
        _cycle(RuntimeType.PYTHON, policy)
    tracker.finish(still_running=_kept(RuntimeType.PYTHON))
    before = _rss_mib()

    for _ in range(60):
        _cycle(RuntimeType.PYTHON, policy)
    tracker.finish(still_running=_kept(RuntimeType.PYTHON))

    # A leaked CPython guest costs ~6 MiB, so leaking would grow this by ~370 MiB.
    assert _rss_mib() - before < 40


@pytest.mark.parametrize("runtime", [RuntimeType.PYTHON], ids=["python"])
def test_rss_stays_flat_over_limit_stop_resets(
    stopping_sandbox: tuple[Sandbox, str], tracker: StoreTracker
) -> None:
    sandbox, code = stopping_sandbox
    for _ in range(5):
        _stop(sandbox, code)
    tracker.finish(still_running=0)
    before = _rss_mib()

    for _ in range(30):
        _stop(sandbox, code)
    tracker.finish(still_running=0)

    # Leaking would grow this by ~185 MiB.
    assert _rss_mib() - before < 40
