"""Who owns an MCP session, on disk, so that sessions outlive a disconnect, a stop or a crash.

Beside each workspace, in the host-only session directory the guest cannot reach, the server
keeps ``mcp-owner.json``: the owner's principal (a hash, never the token), the language, the
persisted-globals flag, which server instance holds the session, and when its client went
away. The file is what makes a directory an MCP session; sessions of library users have none
and are never touched here.

Each running server holds an exclusive ``flock`` on ``<home>/mcp-servers/<instance>.lock``,
beside (not inside) the sessions root, where the library's housekeeping never looks. The
kernel drops the lock when the process ends, however it ends (SIGKILL included), so a server
scanning the root can tell the sessions of a live sibling (lock held: leave them alone) from
those of one that is gone (lock free: adopt or prune them).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import uuid
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ValidationError

from sandbox.core.errors import InvalidSessionIdError
from sandbox.core.runtime_type import RuntimeType
from sandbox.host.atomic_write import write_atomically
from sandbox.sessions.metadata import load_metadata
from sandbox.sessions.workspace import validate_session_id

OWNER_FILE = "mcp-owner.json"
_INSTANCE = re.compile(r"^[0-9a-f]{32}$")
_OPEN_FLAGS = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)


class OwnerRecord(BaseModel):
    """What the server needs to hand a session back to its owner after losing it from memory."""

    principal: str
    language: RuntimeType
    auto_persist_globals: bool
    server: str
    created_at: AwareDatetime
    # Set while no client is attached: the retention period runs from here.
    released_at: AwareDatetime | None = None


class ServerLease:
    """This process's claim on the sessions it records; held until release() or process exit."""

    def __init__(self, leases: Path) -> None:
        self.instance = uuid.uuid4().hex
        leases.mkdir(parents=True, exist_ok=True)
        self._path = leases / f"{self.instance}.lock"
        descriptor = os.open(self._path, _OPEN_FLAGS | os.O_CREAT, 0o600)
        # A server built but never run (or never closed) still gives the descriptor back.
        self._close = weakref.finalize(self, os.close, descriptor)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        if not self._close.alive:
            return
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        self._close()


def leases_dir(sessions_root: Path) -> Path:
    """Where the servers using ``sessions_root`` keep their lock files."""
    return sessions_root.parent / "mcp-servers"


def lease_alive(leases: Path, instance: str) -> bool:
    """Whether the server ``instance`` still runs; errors count as alive, to never prune wrongly."""
    if not _INSTANCE.match(instance):
        return False
    path = leases / f"{instance}.lock"
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True
    else:
        # Nobody holds it, so its server is gone for good: tidy its lock file away.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return False
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def scan_lock(leases: Path) -> Iterator[None]:
    """Serialise scans between servers sharing a root, so that two never adopt one session."""
    leases.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(leases / "scan.lock", _OPEN_FLAGS | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def remove_stale_leases(leases: Path) -> None:
    """Delete the lock files of servers that are gone, whether or not they left sessions."""
    try:
        names = os.listdir(leases)
    except FileNotFoundError:
        return
    for name in names:
        instance, _, suffix = name.partition(".")
        if suffix == "lock" and _INSTANCE.match(instance):
            lease_alive(leases, instance)  # removes the file when nobody holds it


def write_owner(session_directory: Path, record: OwnerRecord) -> None:
    """Replace the record atomically (readable by the server's user only)."""
    write_atomically(session_directory / OWNER_FILE, record.model_dump_json().encode())


def read_owner(session_directory: Path) -> OwnerRecord | None:
    """The record, or None when there is none or it is unreadable (then it is not ours to touch)."""
    try:
        return OwnerRecord.model_validate_json((session_directory / OWNER_FILE).read_bytes())
    except (OSError, ValidationError):
        return None


def recorded_sessions(root: Path) -> Iterator[tuple[str, OwnerRecord]]:
    """Every session directory under ``root`` that carries an owner record."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return
    for entry in entries:
        if not _is_session_id(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        record = read_owner(Path(entry.path))
        if record is not None:
            yield entry.name, record


def last_activity(session_directory: Path, record: OwnerRecord) -> datetime:
    """When the session was last used or let go: where its retention period starts.

    After a crash nobody wrote ``released_at``, so the sandbox's own record of the last
    execution (session.json, flushed at least once a second) stands in for it.
    """
    moments = [record.released_at or record.created_at]
    metadata = load_metadata(session_directory)
    if metadata is not None:
        moments.append(metadata.last_used_at)
    return max(moment.astimezone(UTC) for moment in moments)


def _is_session_id(name: str) -> bool:
    try:
        return validate_session_id(name) == name
    except InvalidSessionIdError:
        return False
