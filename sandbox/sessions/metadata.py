"""Host-only bookkeeping for a session, kept in ``<root>/<id>/session.json``.

The file sits beside the workspace, not inside it, so guest code can neither read nor forge
it: list_sessions() and prune_sessions() trust its timestamps and execution count.

Rewriting the file on every call would cost more than a session call itself, so executions
are counted in memory and written by a background flusher at most ``FLUSH_SECONDS`` later
(and at once by ``flush()`` when a sandbox closes); readers in this process add what is still
pending, so the count they see is exact.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from sandbox.host.atomic_write import write_atomically

METADATA_FILE = "session.json"

FLUSH_SECONDS = 0.5

# Sandboxes of one process that share a session id would otherwise lose increments of the
# counter. Across processes an update can still be lost; that only skews a statistic.
_update_lock = threading.Lock()
# Executions counted but not yet written: session directory -> (runtime, count).
_pending: dict[Path, tuple[str, int]] = {}
# Counts taken from _pending and not yet written: still pending for a reader.
_in_flight: dict[Path, int] = {}
_pending_lock = threading.Lock()
_flush_wanted = threading.Event()
_flusher: threading.Thread | None = None


class SessionMetadata(BaseModel):
    """What the host knows about a session that its workspace files cannot tell."""

    session_id: str
    # The runtime of the latest execution: a session id may be reopened with another runtime.
    runtime: str
    created_at: AwareDatetime
    last_used_at: AwareDatetime
    executions: int = Field(ge=0)


def record_creation(session_directory: Path, session_id: str, runtime: str) -> None:
    """Start the record of a session; reopening an existing one keeps its creation time."""
    record = _fresh(session_id, runtime).model_dump_json().encode()
    with _update_lock:
        try:  # the common case, a brand-new session: one exclusive create, nothing to replace
            descriptor = os.open(
                session_directory / METADATA_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644
            )
        except FileExistsError:
            if load_metadata(session_directory) is None:
                _write(session_directory, _fresh(session_id, runtime))
            return
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(record)


def count_execution(session_directory: Path, runtime: str) -> None:
    """Count one execution; written to session.json within FLUSH_SECONDS."""
    global _flusher
    with _pending_lock:
        _runtime, count = _pending.get(session_directory, (runtime, 0))
        _pending[session_directory] = (runtime, count + 1)
        if _flusher is None:
            _flusher = threading.Thread(
                target=_flush_forever, name="llm-wasm-sandbox-metadata", daemon=True
            )
            _flusher.start()
    if not _flush_wanted.is_set():  # set() takes a lock and notifies: once is enough
        _flush_wanted.set()


def load_counted(session_directory: Path) -> tuple[SessionMetadata | None, int]:
    """The session's record and the executions counted since it was written.

    Under the lock each write holds, so a count is in exactly one of the two: a write in
    progress neither loses it (taken from pending, not yet on disk) nor counts it twice.
    """
    with _update_lock:
        record = load_metadata(session_directory)
        with _pending_lock:
            pending = _pending.get(session_directory, ("", 0))[1]
            return record, pending + _in_flight.get(session_directory, 0)


def flush(session_directory: Path | None = None) -> None:
    """Write the pending counts now: of one session, or of all."""
    with _pending_lock:
        if session_directory is None:
            batch = dict(_pending)
            _pending.clear()
        elif session_directory in _pending:
            batch = {session_directory: _pending.pop(session_directory)}
        else:
            return
        for directory, (_runtime, count) in batch.items():
            _in_flight[directory] = _in_flight.get(directory, 0) + count
    for directory, (runtime, count) in batch.items():
        with contextlib.suppress(OSError):  # a session deleted meanwhile has nothing to record
            record_execution(directory, runtime, count)


def remove_session_directory(session_directory: Path) -> None:
    """Delete a session's directory without racing the flusher's writes into it.

    Its pending counts are dropped, and the deletion holds the lock every write holds, so no
    write is half done inside the tree being removed; a later one finds no directory to write.
    """
    with _pending_lock:
        _pending.pop(session_directory, None)
        _in_flight.pop(session_directory, None)
    with _update_lock:
        shutil.rmtree(session_directory)


@atexit.register
def _flush_at_exit() -> None:
    """Counts of the last FLUSH_SECONDS would otherwise die with the process."""
    flush()


def _flush_forever() -> None:
    while True:
        _flush_wanted.wait()
        time.sleep(FLUSH_SECONDS)  # gather a burst of calls into one write per session
        _flush_wanted.clear()
        flush()


def record_execution(session_directory: Path, runtime: str, count: int = 1) -> None:
    """Count ``count`` executions, so that sessions are pruned by their last use, not their age."""
    with _update_lock:
        try:
            current = load_metadata(session_directory) or _fresh(session_directory.name, runtime)
            updated = current.model_copy(
                update={
                    "runtime": runtime,
                    "last_used_at": datetime.now(UTC),
                    "executions": current.executions + count,
                }
            )
            _write(session_directory, updated)
        finally:  # written (or lost with its directory): no longer in flight
            with _pending_lock:
                left = _in_flight.get(session_directory, 0) - count
                if left > 0:
                    _in_flight[session_directory] = left
                else:
                    _in_flight.pop(session_directory, None)


def load_metadata(session_directory: Path) -> SessionMetadata | None:
    """The session's record, or None if it has none or it is unreadable.

    A damaged record is treated as missing rather than raised: callers then fall back to the
    workspace mtime, and the next record_execution() rewrites it.
    """
    try:
        return SessionMetadata.model_validate_json((session_directory / METADATA_FILE).read_bytes())
    except (FileNotFoundError, ValidationError):
        return None


def _fresh(session_id: str, runtime: str) -> SessionMetadata:
    now = datetime.now(UTC)
    return SessionMetadata(
        session_id=session_id, runtime=runtime, created_at=now, last_used_at=now, executions=0
    )


def _write(session_directory: Path, metadata: SessionMetadata) -> None:
    """Replace the file atomically, so a concurrent reader never sees half a record.

    There is no fsync: this runs on every execution, and a crash costs at most one count.
    """
    write_atomically(session_directory / METADATA_FILE, metadata.model_dump_json().encode())
