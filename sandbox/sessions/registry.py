"""Which sandboxes hold a live interpreter, and freeing the ones nobody is using.

An idle CPython guest costs ~6 MiB and a thread; a server with thousands of sessions cannot
keep them all. Eviction frees the interpreter and keeps the workspace: the sandbox boots a
fresh interpreter on its next call and says so (``session_reset``), restoring persisted
globals when ``auto_persist_globals`` is on.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Protocol


class _Evictable(Protocol):
    def evict(self, reason: str) -> bool:
        """Free the interpreter unless a call is running; True if it was freed."""


class LiveSessions:
    """Least-recently-used bookkeeping of live sandboxes, with optional limits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_used: dict[int, tuple[float, weakref.ref[_Evictable]]] = {}
        self._collected: list[int] = []
        self.idle_timeout_seconds: float | None = None
        self.max_live_sessions: int | None = None
        self._reaper: threading.Thread | None = None

    def configure(
        self, *, idle_timeout_seconds: float | None, max_live_sessions: int | None
    ) -> None:
        if idle_timeout_seconds is not None and idle_timeout_seconds <= 0:
            raise ValueError(
                f"idle_timeout_seconds must be > 0 or None, got {idle_timeout_seconds}"
            )
        if max_live_sessions is not None and max_live_sessions < 1:
            raise ValueError(f"max_live_sessions must be >= 1 or None, got {max_live_sessions}")
        self.idle_timeout_seconds = idle_timeout_seconds
        self.max_live_sessions = max_live_sessions
        if idle_timeout_seconds is not None and self._reaper is None:
            self._reaper = threading.Thread(
                target=self._reap, name="llm-wasm-sandbox-evict", daemon=True
            )
            self._reaper.start()

    def touch(self, sandbox: _Evictable) -> None:
        """Record a call that just used ``sandbox``'s interpreter; enforce max_live_sessions."""
        key = id(sandbox)
        with self._lock:
            self._purge_collected()
            known = self._last_used.get(key)
            ref = known[1] if known else weakref.ref(sandbox, lambda _: self._collected.append(key))
            self._last_used[key] = (time.monotonic(), ref)
            limit = self.max_live_sessions
            if limit is None or len(self._last_used) <= limit:
                return
            oldest = sorted(self._last_used.items(), key=lambda item: item[1][0])
            victims = [ref for other, (_, ref) in oldest if other != key]
            victims = victims[: len(self._last_used) - limit]
        for victim in victims:
            self._evict(victim, "evicted_max_live_sessions")

    def forget(self, sandbox: _Evictable) -> None:
        with self._lock:
            self._last_used.pop(id(sandbox), None)

    def _purge_collected(self) -> None:
        """Drop sandboxes garbage-collected without close(); call with the lock held.

        Their weakref callbacks only queue the key (GC may run while the lock is held).
        """
        while self._collected:
            self._last_used.pop(self._collected.pop(), None)

    def live_count(self) -> int:
        with self._lock:
            self._purge_collected()
            return len(self._last_used)

    def evict_idle(self, idle_seconds: float) -> int:
        """Free every interpreter unused for ``idle_seconds``; returns how many were freed."""
        cutoff = time.monotonic() - idle_seconds
        with self._lock:
            self._purge_collected()
            idle = [ref for used, ref in self._last_used.values() if used <= cutoff]
        return sum(self._evict(ref, "evicted_idle") for ref in idle)

    def _evict(self, ref: weakref.ref[_Evictable], reason: str) -> bool:
        sandbox = ref()
        return sandbox.evict(reason) if sandbox is not None else False

    def _reap(self) -> None:
        while True:
            timeout = self.idle_timeout_seconds
            time.sleep(min(timeout, 1.0) if timeout else 1.0)  # a periodic sweep, not a sync
            if timeout:
                self.evict_idle(timeout)


LIVE_SESSIONS = LiveSessions()


def configure_sessions(
    *, idle_timeout_seconds: float | None = None, max_live_sessions: int | None = None
) -> None:
    """Process-wide limits on live interpreters: an idle timeout and a maximum count.

    Evicted sandboxes keep their workspace and boot a fresh interpreter on their next call.
    ``None`` (the default) means no limit.
    """
    LIVE_SESSIONS.configure(
        idle_timeout_seconds=idle_timeout_seconds, max_live_sessions=max_live_sessions
    )


def evict_idle_sessions(idle_seconds: float = 0.0) -> int:
    """Free now every interpreter unused for ``idle_seconds``; returns how many were freed."""
    return LIVE_SESSIONS.evict_idle(idle_seconds)
