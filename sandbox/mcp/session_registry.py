"""SessionRegistry: the live sandboxes of an MCP server, who owns each one, and when it expires.

A session id is only honoured for the client that created it, so on a shared server one client
cannot run code in, read from, or even detect another client's session. Sessions made here are
the server's own: they are destroyed, workspace included, on destroy_session, after the idle
TTL, and when the server stops, so an unattended server does not fill the disk.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mcp.server.mcpserver.exceptions import ToolError

from sandbox.core.errors import SandboxError, SessionNotFoundError
from sandbox.core.factory import create_sandbox
from sandbox.core.policy import ExecutionPolicy
from sandbox.core.runtime_type import RuntimeType
from sandbox.mcp.limits import ServerLimits
from sandbox.mcp.metrics import Metrics
from sandbox.sessions.files import delete_session_workspace
from sandbox.sessions.sandbox import Sandbox

_log = logging.getLogger(__name__)


@dataclass(eq=False)
class LiveSession:
    """One session and its bookkeeping; ``lock`` is held for every operation on it."""

    session_id: str
    owner: str
    language: RuntimeType
    sandbox: Sandbox
    auto_persist_globals: bool
    created_at: datetime
    last_used_at: datetime
    idle_since: float
    executions: int = 0
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class SessionRegistry:
    """Creates, hands out and retires sessions under the server's caps. Thread-safe."""

    def __init__(
        self,
        policy: ExecutionPolicy,
        limits: ServerLimits,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._limits = limits
        self._metrics = metrics
        self._clock = clock
        self._sessions: dict[str, LiveSession] = {}
        self._defaults: dict[tuple[str, RuntimeType], str] = {}
        self._lock = threading.Lock()
        # Creations run one at a time so that two concurrent calls cannot both pass the caps.
        self._create_lock = threading.Lock()

    def live_count(self) -> int:
        with self._lock:
            return len(self._sessions)

    def create(
        self, owner: str, language: RuntimeType, *, auto_persist_globals: bool
    ) -> LiveSession:
        """A new session for ``owner``; raises ToolError when a cap is reached."""
        self.evict_idle()
        with self._create_lock:
            return self._create_locked(owner, language, auto_persist_globals)

    @contextlib.contextmanager
    def use(self, owner: str, session_id: str) -> Iterator[LiveSession]:
        """Exclusive use of ``owner``'s session, which then counts as used now."""
        self.evict_idle()
        with self._lock:
            live = self._sessions.get(session_id)
        if live is None or live.owner != owner:
            raise self._unknown(session_id)
        with live.lock:
            if live.closed:
                raise self._unknown(session_id)
            try:
                yield live
            finally:
                live.last_used_at = datetime.now(UTC)
                live.idle_since = self._clock()

    @contextlib.contextmanager
    def use_default(self, owner: str, language: RuntimeType) -> Iterator[LiveSession]:
        """Exclusive use of ``owner``'s default ``language`` session, created on first use."""
        self.evict_idle()
        with self._create_lock:
            with self._lock:
                session_id = self._defaults.get((owner, language))
                exists = session_id in self._sessions
            if session_id is None or not exists:
                session_id = self._create_locked(owner, language, False).session_id
                with self._lock:
                    self._defaults[(owner, language)] = session_id
        with self.use(owner, session_id) as live:
            yield live

    def sessions_of(self, owner: str) -> list[tuple[LiveSession, bool]]:
        """``owner``'s sessions, oldest first, each with whether it is a default session."""
        self.evict_idle()
        with self._lock:
            defaults = {sid for (who, _), sid in self._defaults.items() if who == owner}
            owned = [live for live in self._sessions.values() if live.owner == owner]
        owned.sort(key=lambda live: live.created_at)
        return [(live, live.session_id in defaults) for live in owned]

    def destroy(self, owner: str, session_id: str) -> None:
        """Stop the interpreter and delete the workspace; waits for a running call to finish."""
        with self.use(owner, session_id) as live:
            self._forget(live)
            self._discard(live)

    def reset(self, live: LiveSession) -> None:
        """Empty the workspace and restart the interpreter; call it while using ``live``.

        The whole workspace directory is replaced rather than emptied file by file, so that
        directories and symlinks left by guest code go too, and the new interpreter cannot
        hold a handle into the old tree.
        """
        live.sandbox.close()
        with contextlib.suppress(SessionNotFoundError):
            delete_session_workspace(live.session_id)
        try:
            live.sandbox = create_sandbox(
                live.language,
                self._policy,
                live.session_id,
                auto_persist_globals=live.auto_persist_globals,
            )
        except SandboxError as error:
            self._forget(live)
            raise ToolError(
                f"the workspace was emptied but a new {live.language.value} interpreter could "
                f"not start ({error}); the session is gone, create a new one"
            ) from error

    def evict_idle(self) -> int:
        """Destroy sessions unused for longer than the idle TTL; sessions in use are kept."""
        deadline = self._clock() - self._limits.session_idle_ttl_seconds
        expired: list[LiveSession] = []
        with self._lock:
            for live in list(self._sessions.values()):
                if live.idle_since > deadline or not live.lock.acquire(blocking=False):
                    continue
                try:
                    self._forget_locked(live)
                finally:
                    live.lock.release()
                expired.append(live)
        for live in expired:
            self._discard(live)
        if expired:
            self._metrics.record_sessions_expired(len(expired))
        return len(expired)

    def close_all(self) -> None:
        """Retire every session, for server shutdown."""
        with self._lock:
            sessions = list(self._sessions.values())
        for live in sessions:
            with live.lock:
                self._forget(live)
                self._discard(live)

    def _create_locked(
        self, owner: str, language: RuntimeType, auto_persist_globals: bool
    ) -> LiveSession:
        with self._lock:
            total = len(self._sessions)
            owned = sum(1 for live in self._sessions.values() if live.owner == owner)
        if total >= self._limits.max_sessions:
            self._metrics.record_rejection("server_session_limit")
            raise ToolError(
                f"the server already runs its maximum of {self._limits.max_sessions} sessions; "
                "destroy sessions you no longer need, or retry once idle sessions expire "
                f"({self._limits.session_idle_ttl_seconds:g} s without use)"
            )
        if owned >= self._limits.max_sessions_per_client:
            self._metrics.record_rejection("client_session_limit")
            raise ToolError(
                f"you already have {owned} sessions, the most one client may hold; call "
                "destroy_session on one you no longer need (list_sessions shows them)"
            )
        try:
            sandbox = create_sandbox(
                language, self._policy, auto_persist_globals=auto_persist_globals
            )
        except SandboxError as error:
            raise ToolError(f"could not start a {language.value} interpreter: {error}") from error
        now = datetime.now(UTC)
        live = LiveSession(
            session_id=sandbox.session_id,
            owner=owner,
            language=language,
            sandbox=sandbox,
            auto_persist_globals=auto_persist_globals,
            created_at=now,
            last_used_at=now,
            idle_since=self._clock(),
        )
        with self._lock:
            self._sessions[live.session_id] = live
        self._metrics.record_session_created()
        return live

    def _forget(self, live: LiveSession) -> None:
        with self._lock:
            self._forget_locked(live)

    def _forget_locked(self, live: LiveSession) -> None:
        live.closed = True
        self._sessions.pop(live.session_id, None)
        key = (live.owner, live.language)
        if self._defaults.get(key) == live.session_id:
            del self._defaults[key]

    def _discard(self, live: LiveSession) -> None:
        """Free the interpreter and the disk space of a session already forgotten."""
        live.sandbox.close()
        try:
            delete_session_workspace(live.session_id)
        except SessionNotFoundError:
            pass
        except OSError as error:
            _log.warning("could not delete the workspace of session %s: %s", live.session_id, error)

    def _unknown(self, session_id: str) -> ToolError:
        return ToolError(
            f"no session {session_id!r} exists for you. Sessions end on destroy_session, after "
            f"{self._limits.session_idle_ttl_seconds:g} s without use, and when the server "
            "restarts. Call list_sessions to see yours, create_session for a new one, or omit "
            "session_id to use your default session for the language."
        )
