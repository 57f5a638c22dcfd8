"""Checkpoints of a session: take, list, restore, undo, fork, and the state kept at eviction.

A checkpoint is the interpreter's state plus the workspace's. For Python the interpreter is
its linear memory between two turns, taken as the pages that differ from the snapshot
(``sandbox/host/memory_image.py``) and restored into a fresh instance. QuickJS's driver is
parked inside a call, so its memory cannot be carried: a JavaScript checkpoint records the
cells the interpreter ran, and restoring boots a fresh one and replays them (their output is
dropped) with the workspace as it was, then puts the files back as the checkpoint had them.

Checkpoints are host-side (in this process's memory, and workspace copies beside the session,
outside the guest's reach) and counted against ``policy.state_budget_bytes``. Their memory is
held only while the interpreter is: an evicted session writes its checkpoints' interpreter
pages to signed files beside the session and reads one back to restore it, so evicting
interpreters frees what their checkpoints hold too (otherwise ``max_live_sessions`` would
bound interpreters but not the copies of their heaps). When an
interpreter is evicted or closed its state is written, signed, to the session directory and
restored by the next boot (``keep_interpreter_state``), so a session survives eviction and
server restarts; a state that hit a limit is never saved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sandbox.core.errors import CheckpointError, SandboxError
from sandbox.core.policy import ExecutionPolicy
from sandbox.host import state_file
from sandbox.host.guest import BootSpec, LiveGuest
from sandbox.host.limits import CellLimits
from sandbox.host.memory_image import MemoryImage
from sandbox.host.reactor_guest import ImageProgram, ReactorGuest
from sandbox.sessions import changes
from sandbox.sessions.workspace_snapshot import FileStore, Manifest

STATE_DIR = ".checkpoints"
SAVED_STATE = "interpreter.state"
_log = logging.getLogger("sandbox.sessions")
# Host memory one manifest entry (path, kind, size, mtime, digest) takes, roughly.
_MANIFEST_ENTRY_BYTES = 256


@dataclass(frozen=True)
class Checkpoint:
    """A point a session can return to; what ``Sandbox.checkpoints()`` lists."""

    id: str
    label: str | None
    session_id: str
    created_at: float  # time.time()
    # Host memory it holds: interpreter pages (Python), the code of the cells it replays
    # (JavaScript).
    memory_bytes: int
    files_bytes: int  # workspace bytes first stored for this checkpoint
    replay_cells: int  # cells a JavaScript restore re-runs; 0 for Python
    automatic: bool  # the one undo() returns to
    # Host memory its manifest holds (a JavaScript one's replay source is its memory_bytes).
    # Counted so that checkpoints of an unchanged workspace are not free.
    bookkeeping_bytes: int = 0

    @property
    def size_bytes(self) -> int:
        return self.memory_bytes + self.files_bytes + self.bookkeeping_bytes

    @property
    def age_seconds(self) -> float:
        return max(0.0, time.time() - self.created_at)


_UNRECORDED = Checkpoint("none", None, "", 0.0, 0, 0, 0, True)  # an undo point not taken


@dataclass(frozen=True)
class _Held:
    checkpoint: Checkpoint
    image: MemoryImage | None
    cells: tuple[str, ...]
    manifest: Manifest
    spilled: Path | None = None  # ``image`` written out while the interpreter is freed


class SessionState:
    """The checkpoints, undo point, replay history and saved state of one Sandbox."""

    def __init__(
        self, *, spec: BootSpec, policy: ExecutionPolicy, workspace: Path, session_dir: Path
    ) -> None:
        self._spec, self._policy, self._workspace = spec, policy, workspace
        self._dir = session_dir / STATE_DIR
        _remove_dead_stores(self._dir)
        store = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._files = FileStore(self._dir / f"files-{store}")
        self._images = self._dir / f"images-{store}"  # checkpoints of an evicted interpreter
        self._held: list[_Held] = []
        self._undo: _Held | None = None
        self._cells: list[str] = []  # what the live JavaScript interpreter has run
        self._cells_bytes = 0
        # The live JavaScript interpreter ran more code than state_budget_bytes: its history
        # was dropped, so it cannot be checkpointed until it restarts.
        self._history_lost = False
        self._manifest: Manifest | None = None  # the latest, so unchanged files are not read
        self.refused: str | None = None  # why the last saved state was not restored
        # Memory images, or a replay history? Once: a check against a runtime-checkable
        # Protocol costs ~10 us, which every cell would pay.
        self.images = isinstance(spec.program, ImageProgram)

    # --- taking -------------------------------------------------------------------------

    def take(self, guest: LiveGuest, label: str | None, *, automatic: bool) -> Checkpoint:
        """Record the session as it is now; refused if it does not fit the state budget."""
        if automatic:  # the old undo point is stale from now on, even if this one is refused
            self._undo = None
        if self._history_lost:
            if automatic:
                return _UNRECORDED
            raise self._history_refusal("checkpointed")
        image, manifest, stored = self._capture(guest)
        checkpoint = Checkpoint(
            id=uuid.uuid4().hex[:12],
            label=label,
            session_id=self._workspace.parent.name,
            created_at=time.time(),
            memory_bytes=image.stored_bytes if image is not None else self._cells_bytes,
            files_bytes=stored,
            replay_cells=0 if image is not None else len(self._cells),
            automatic=automatic,
            bookkeeping_bytes=len(manifest) * _MANIFEST_ENTRY_BYTES,
        )
        held = _Held(checkpoint, image, () if image is not None else tuple(self._cells), manifest)
        used = sum(h.checkpoint.size_bytes for h in self._all())
        if used + checkpoint.size_bytes > self._policy.state_budget_bytes:
            self._collect()
            if automatic:
                return checkpoint  # undo is unavailable for this cell; nothing else changes
            raise CheckpointError(
                f"a checkpoint of {checkpoint.size_bytes} bytes does not fit the session's state "
                f"budget ({used} of state_budget_bytes={self._policy.state_budget_bytes} are "
                "used); delete checkpoints with delete_checkpoint() or raise the budget"
            )
        if automatic:
            self._undo = held
        else:
            self._held.append(held)
        return checkpoint

    def after_cell(self, code: str, alive: bool) -> None:
        """Keep the replay history of a JavaScript interpreter; a stopped one has none. The
        history is bounded by the state budget: past it, it is dropped (and with it the means
        to checkpoint that interpreter), so a long-lived session's code does not pile up."""
        if self.images:
            return
        if not alive:
            self._set_history([])
        elif not self._history_lost:
            self._cells.append(code)
            self._cells_bytes += len(code.encode())
            if self._cells_bytes > self._policy.state_budget_bytes:
                self._set_history([])
                self._history_lost = True

    def _set_history(self, cells: list[str]) -> None:
        """The history of a new interpreter: what it was rebuilt from (none for a fresh one)."""
        self._cells = cells
        self._cells_bytes = sum(len(code.encode()) for code in cells)
        self._history_lost = False

    def listing(self) -> list[Checkpoint]:
        return [held.checkpoint for held in self._all()]

    def delete(self, checkpoint: Checkpoint | str) -> None:
        held = self._find(checkpoint)
        if held is self._undo:
            self._undo = None
        else:
            self._held.remove(held)
        if held.spilled is not None:
            held.spilled.unlink(missing_ok=True)
        self._collect()

    def spill(self) -> None:
        """Move the checkpoints' interpreter pages out of memory, for an eviction: written
        signed beside the session, read back by a restore. One that cannot be written is
        dropped (and logged): an evicted session must not keep a copy of its heap."""
        self._held = [kept for held in self._held if (kept := self._spilled(held)) is not None]
        if self._undo is not None:
            self._undo = self._spilled(self._undo)

    def _spilled(self, held: _Held) -> _Held | None:
        if held.image is None:
            return held
        assert isinstance(self._spec.program, ImageProgram)
        path = self._images / f"{held.checkpoint.id}.state"
        try:
            identity = self._spec.program.state_identity(self._spec)
            state_file.save(path, state_file.encode(held.image, identity, {}))
        except (SandboxError, OSError) as error:
            _log.warning(
                "session %s: checkpoint %s dropped at eviction, it could not be written: %s",
                self._workspace.parent.name,
                held.checkpoint.id,
                error,
            )
            return None
        return dataclasses.replace(held, image=None, spilled=path)

    # --- going back ---------------------------------------------------------------------

    def restore(
        self, checkpoint: Checkpoint | str | None, *, keep_files: bool = False
    ) -> LiveGuest:
        """A new interpreter in ``checkpoint``'s state (None: the undo point), files restored
        unless ``keep_files``; the caller closes the old one. The undo point is used up."""
        if checkpoint is None:
            if self._undo is None:
                raise CheckpointError(
                    "nothing to undo: no cell has run since the last undo, or undo_last_cell is "
                    "off in the policy, or the checkpoint did not fit state_budget_bytes"
                )
            held = self._undo
        else:
            held = self._find(checkpoint)
        target = None if keep_files else held.manifest
        guest = self.boot_held(held, self._workspace, target)
        self._set_history(list(held.cells))
        if held is self._undo:
            self._undo = None
        return guest

    def boot_held(self, held: _Held, workspace: Path, files: Manifest | None) -> LiveGuest:
        """Boot ``held``'s interpreter on ``workspace``, leaving its files as ``files`` (or as
        they are, when None); file contents come from this session's store."""
        limit = self._policy.workspace_max_files + 1
        if held.image is not None or held.spilled is not None:
            assert isinstance(self._spec.program, ImageProgram)
            image = held.image if held.image is not None else self._read_spilled(held)
            if files is not None:
                self._files.restore(workspace, files, limit)
            return self._spec.program.boot_from_image(self._spec, workspace, image)
        final = files
        if final is None:  # replay may write files; put back the ones there are now
            final, _ = self._files.snapshot(
                workspace, self._manifest, limit, self._policy.workspace_max_bytes
            )
        self._files.restore(workspace, held.manifest, limit)
        guest = self._spec.boot(workspace)
        try:
            guest.wait_ready()
            for number, code in enumerate(held.cells, 1):
                limits = CellLimits.from_policy(self._policy, changes.scan_workspace(workspace))
                run = guest.run_cell(code, limits)
                if not run.guest_alive:
                    reason = run.trap.value if run.trap else "guest_stopped"
                    raise CheckpointError(
                        f"replaying cell {number} of {len(held.cells)} stopped the interpreter "
                        f"({reason}: {run.trap_message}); the checkpoint cannot be rebuilt"
                    )
        except BaseException:
            guest.close()
            raise
        self._files.restore(workspace, final, limit)
        return guest

    def _read_spilled(self, held: _Held) -> MemoryImage:
        assert held.spilled is not None and isinstance(self._spec.program, ImageProgram)
        what = f"checkpoint {held.checkpoint.id} of session {self._workspace.parent.name}"
        try:
            data = held.spilled.read_bytes()
        except OSError as error:
            raise CheckpointError(f"{what} could not be read back: {error}") from error
        image, _ = state_file.decode(data, self._spec.program.state_identity(self._spec), what=what)
        return image

    def fork_held(self, guest: LiveGuest) -> _Held:
        """The session as it is now, for a fork (not listed, not counted)."""
        if self._history_lost:
            raise self._history_refusal("forked")
        image, manifest, _ = self._capture(guest)
        checkpoint = Checkpoint("fork", None, "", time.time(), 0, 0, 0, False)
        return _Held(checkpoint, image, tuple(self._cells), manifest)

    def fork_into(self, parent: SessionState, held: _Held) -> LiveGuest:
        """Boot this new session (its workspace empty) as ``parent`` was at ``held``."""
        guest = parent.boot_held(held, self._workspace, held.manifest)
        self._set_history(list(held.cells))
        return guest

    # --- surviving eviction and restarts -------------------------------------------------

    def save(self, guest: LiveGuest, reason: str) -> None:
        """Write the interpreter's state for the next boot; a failure only costs that."""
        if not (self._policy.keep_interpreter_state and isinstance(guest, ReactorGuest)):
            return
        if not guest.alive or not isinstance(self._spec.program, ImageProgram):
            return
        try:
            image = guest.capture()
            if image.stored_bytes > self._policy.state_budget_bytes:
                _log.warning(
                    "session %s: interpreter state of %d bytes exceeds state_budget_bytes; "
                    "not saved",
                    self._workspace.parent.name,
                    image.stored_bytes,
                )
                return
            identity = self._spec.program.state_identity(self._spec)
            data = state_file.encode(image, identity, {"reason": reason, "saved_at": time.time()})
            state_file.save(self._dir / SAVED_STATE, data)
        except (SandboxError, OSError) as error:
            _log.warning("session %s: state not saved: %s", self._workspace.parent.name, error)

    def discard_saved(self) -> None:
        """Forget the saved state: the next boot starts a bare interpreter."""
        with contextlib.suppress(FileNotFoundError):
            (self._dir / SAVED_STATE).unlink()

    def boot(self) -> tuple[LiveGuest, bool]:
        """(a new interpreter, whether it resumed the saved state). The saved file is used up:
        the live interpreter holds that state now, and one that later hits a limit must not
        come back as it."""
        path = self._dir / SAVED_STATE
        self.refused = None
        # A new interpreter has run nothing yet: a JavaScript checkpoint taken from now on
        # must not replay cells of the one it replaces (after an eviction, say).
        self._set_history([])
        if self._policy.keep_interpreter_state and isinstance(self._spec.program, ImageProgram):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                data = None
            if data is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                try:
                    image, _ = state_file.decode(
                        data,
                        self._spec.program.state_identity(self._spec),
                        what=f"the saved state of session {self._workspace.parent.name}",
                    )
                    return self._spec.program.boot_from_image(
                        self._spec, self._workspace, image
                    ), True
                except CheckpointError as error:  # integrity, or over the memory limit
                    self.refused = str(error)
                    _log.warning("%s; a fresh interpreter boots instead", error)
        return self._spec.boot(self._workspace), False

    def close(self) -> None:
        """Drop every checkpoint (they live as long as the Sandbox) and their file copies."""
        self._held.clear()
        self._undo = None
        shutil.rmtree(self._files.directory, ignore_errors=True)
        shutil.rmtree(self._images, ignore_errors=True)

    # --- helpers ------------------------------------------------------------------------

    def _history_refusal(self, done: str) -> CheckpointError:
        return CheckpointError(
            "this JavaScript interpreter has run more code since it started than "
            f"state_budget_bytes={self._policy.state_budget_bytes} lets a checkpoint replay, so "
            f"it cannot be {done} until it restarts (reset_workspace, or a new session); or "
            "raise the budget"
        )

    def _capture(self, guest: LiveGuest) -> tuple[MemoryImage | None, Manifest, int]:
        """The interpreter's pages (Python), the workspace's manifest and the bytes newly
        stored for it; the manifest is kept, so unchanged files are not read next time."""
        image = guest.capture() if isinstance(guest, ReactorGuest) else None
        manifest, stored = self._files.snapshot(
            self._workspace,
            self._manifest,
            self._policy.workspace_max_files + 1,
            self._policy.workspace_max_bytes,
        )
        self._manifest = manifest
        return image, manifest, stored

    def _all(self) -> list[_Held]:
        return [*self._held, *([self._undo] if self._undo is not None else [])]

    def _find(self, checkpoint: Checkpoint | str) -> _Held:
        wanted = checkpoint.id if isinstance(checkpoint, Checkpoint) else checkpoint
        if not isinstance(wanted, str):
            raise TypeError(
                f"checkpoint must be a Checkpoint or its id, not {type(wanted).__name__}"
            )
        for held in self._all():
            if wanted in (held.checkpoint.id, held.checkpoint.label):
                return held
        known = ", ".join(f"{h.checkpoint.id} ({h.checkpoint.label})" for h in self._all())
        raise CheckpointError(
            f"this session has no checkpoint {wanted!r}; it has: {known or 'none'} "
            "(checkpoints live as long as the Sandbox object)"
        )

    def _collect(self) -> None:
        manifests = [held.manifest for held in self._all()]
        if self._manifest is not None:
            manifests.append(self._manifest)
        self._files.collect(manifests)


def has_saved_state(session_dir: Path) -> bool:
    """Whether an interpreter state waits in ``session_dir`` for the session's next boot."""
    return (session_dir / STATE_DIR / SAVED_STATE).is_file()


def _remove_dead_stores(directory: Path) -> None:
    """File and page copies of checkpoints whose process has ended: nobody can restore them."""
    if not directory.is_dir():
        return
    for store in [*directory.glob("files-*"), *directory.glob("images-*")]:
        try:
            pid = int(store.name.split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(store, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue
