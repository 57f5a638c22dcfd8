"""Interpreters booted ahead of demand, so a new sandbox does not wait for a boot.

A CPython boot takes ~30 ms and a QuickJS boot ~2 ms; a warm sandbox call takes well under a
millisecond. Each pooled guest is booted with a fresh, empty workspace of its own (a preopened
directory cannot be swapped later), and the sandbox that takes it adopts that workspace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from sandbox.host.guest import CELL_ACTIVITY, BootSpec, LiveGuest

DEFAULT_POOL_SIZE = 2
# How long a refill waits for the cell that usually follows take() before booting anyway.
_QUIET_WAIT_SECONDS = 0.05
# How long close() waits for a boot in progress to finish and discard its spare.
_CLOSE_WAIT_SECONDS = 5.0


class WarmPool:
    """Keeps up to ``size`` booted guests of one BootSpec ready, refilled on a daemon thread."""

    def __init__(
        self,
        spec: BootSpec,
        new_workspace: Callable[[], Path],
        discard_workspace: Callable[[Path], None],
        size: int,
    ) -> None:
        """``discard_workspace`` removes a spare's never-used workspace (and whatever the
        session layer put beside it)."""
        self._spec = spec
        self._new_workspace = new_workspace
        self._discard_workspace = discard_workspace
        self._size = size
        self._ready: list[tuple[LiveGuest, Path]] = []
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._closed = False
        self._wanted.set()
        self._refiller = threading.Thread(
            target=self._refill, name="llm-wasm-sandbox-pool", daemon=True
        )
        self._refiller.start()

    def take(self) -> tuple[LiveGuest, Path]:
        """A booted guest and its workspace; boots one on this thread if none is ready."""
        with self._lock:
            entry = self._ready.pop() if self._ready else None
        self._wanted.set()
        if entry is None:
            workspace = self._new_workspace()
            entry = (self._spec.boot(workspace), workspace)
        return entry

    def close(self) -> None:
        """Stop the refill thread and discard the unused guests and their empty workspaces.

        It waits for a boot in progress (milliseconds), which discards its own spare once it
        sees the pool closed: a process that exits right after close() leaves no workspace.
        """
        self._closed = True
        self._wanted.set()
        if self._refiller is not threading.current_thread():
            self._refiller.join(_CLOSE_WAIT_SECONDS)
        with self._lock:
            leftovers, self._ready = self._ready, []
        for guest, workspace in leftovers:
            guest.close()
            self._discard_workspace(workspace)

    def _refill(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            # First let the cell that usually follows take() run, then boot between cells.
            finished = CELL_ACTIVITY.finished()
            while not self._closed:
                CELL_ACTIVITY.wait_for_quiet(after=finished, timeout=_QUIET_WAIT_SECONDS)
                finished = -1
                with self._lock:
                    if len(self._ready) >= self._size:
                        break
                workspace = self._new_workspace()
                try:
                    guest = self._spec.boot(workspace)
                    guest.wait_ready()
                except Exception:
                    # Perhaps for now only (the host out of descriptors): take() boots on its
                    # own thread and raises the error if it persists; its next take() retries.
                    self._discard_workspace(workspace)
                    break
                with self._lock:
                    if not self._closed:
                        self._ready.append((guest, workspace))
                        continue
                guest.close()
                self._discard_workspace(workspace)
            if self._closed:
                return
