"""What every live guest is, whatever its runtime, and the bookkeeping shared by all of them.

A *live guest* is one booted interpreter owned by one sandbox at a time; ``run_cell`` runs
code in it under per-cell limits and never raises for guest failures. Two kinds exist:
``ParkedGuest`` (``parked_guest.py``), whose driver waits inside the interpreter for the next
cell, for runtimes without an eval export (QuickJS); and ``ReactorGuest``
(``reactor_guest.py``), where the host calls an export per cell (the CPython reactor).
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sandbox.core.errors import GuestStartupError
from sandbox.host.control import CellControl
from sandbox.host.guest_store import CellRun
from sandbox.host.limits import CellLimits
from sandbox.host.module_cache import GuestBinary

__all__ = ["CELL_ACTIVITY", "BootSpec", "CellRun", "GuestProgram", "LiveGuest", "track"]

BOOT_LIMITS = CellLimits(
    fuel=20_000_000_000,
    timeout_seconds=120.0,
    stdout_max_bytes=65536,
    stderr_max_bytes=65536,
    disk_bytes=0,
    disk_entries=0,
)


class LiveGuest(Protocol):
    spec: BootSpec

    @property
    def alive(self) -> bool: ...

    def wait_ready(self) -> None:
        """Block until the interpreter has booted; raise GuestStartupError if it could not."""

    def run_cell(
        self, code: str, limits: CellLimits, control: CellControl | None = None
    ) -> CellRun:
        """Run ``code`` under ``limits``; never raises for guest failures.

        ``control`` cancels the cell from another thread and receives its output as written.
        """

    def close(self) -> None:
        """Stop the interpreter and free it (not the workspace)."""

    def join(self, timeout: float) -> None:
        """Wait until close() has freed everything."""


class GuestProgram(Protocol):
    """What a language runtime tells the host about its interpreter."""

    name: str
    # Whether new sandboxes take interpreters booted ahead of demand (worth it for slow boots).
    warm_pool: bool

    @property
    def binary(self) -> GuestBinary: ...

    def guest_mounts(self) -> tuple[tuple[Path, str], ...]:
        """Read-only directories every guest of this runtime gets (host path, guest path)."""

    def boot(self, spec: BootSpec, workspace: Path) -> LiveGuest:
        """Start an interpreter for ``spec`` on ``workspace`` (it may finish booting later)."""

    def prepare(self) -> None:
        """Compile (or load) everything a first boot needs, so that it does not wait."""

    def is_prepared(self) -> bool:
        """Whether the compiled artifacts are already cached on this machine."""


@dataclass(frozen=True)
class BootSpec:
    """Everything fixed when an interpreter boots; guests with equal specs are interchangeable."""

    program: GuestProgram
    workspace_guest_path: str
    read_only_mounts: tuple[tuple[Path, str], ...]
    env: tuple[tuple[str, str], ...]
    memory_bytes: int
    # Guest directory where the driver saves and restores globals, or None to keep none.
    globals_dir: str | None = None

    def boot(self, workspace: Path) -> LiveGuest:
        return self.program.boot(self, workspace)


class _CellActivity:
    """Counts execute() calls in flight, so background boots can wait for a quiet moment.

    Booting an interpreter takes the GIL many times over its few milliseconds, which stalls the
    host side of any call running meanwhile; the warm pool therefore boots between calls.
    """

    def __init__(self) -> None:
        self._in_flight = 0
        self._finished = 0
        self._changed = threading.Condition()

    def __enter__(self) -> None:
        with self._changed:
            self._in_flight += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._changed:
            self._in_flight -= 1
            self._finished += 1
            self._changed.notify_all()

    def finished(self) -> int:
        return self._finished

    def wait_for_quiet(self, after: int, timeout: float) -> None:
        """Wait until a cell finished after ``after`` and none is running, at most ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: self._in_flight == 0 and self._finished > after, timeout)


CELL_ACTIVITY = _CellActivity()
_instances: weakref.WeakSet[LiveGuest] = weakref.WeakSet()
_instances_lock = threading.Lock()
_exiting = False


def track(guest: LiveGuest, thread: threading.Thread | None = None) -> None:
    """Track a guest for the exit clean-up (starting its thread), which none may start after.

    One step under the lock, so the clean-up never sees a guest whose thread has not started.
    """
    with _instances_lock:
        if _exiting:
            raise GuestStartupError("the Python process is exiting; no new interpreter starts")
        _instances.add(guest)
        if thread is not None:
            thread.start()


def exiting() -> bool:
    """Whether the exit clean-up has begun: from then on, guests are only ever freed."""
    return _exiting


@atexit.register
def _stop_all_guests() -> None:
    """Close every guest and let it free its store and files before exit."""
    global _exiting
    with _instances_lock:
        _exiting = True
        guests = list(_instances)
    for guest in guests:
        guest.close()
    deadline = time.monotonic() + 2.0
    for guest in guests:
        guest.join(max(0.0, deadline - time.monotonic()))
