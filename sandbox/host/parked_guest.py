"""A live guest whose driver waits inside the interpreter for the next cell (QuickJS).

The driver runs a loop inside WebAssembly: hypercall, read the cell file, run it, report the
status with the next hypercall. While it waits, the guest thread is parked inside our
``poll_oneoff`` on a queue, so the interpreter's whole state survives between cells and a cell
costs one thread hand-off instead of an interpreter boot. This is for runtimes that give no
eval export; the hypercall carries a per-interpreter secret (``poll.py``).

Everything that touches the wasmtime Store happens on the guest thread; the caller's thread
only exchanges messages with it. Per-cell fuel and deadlines are set inside the hypercall,
just before the guest resumes.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

import wasmtime

from sandbox.core.errors import GuestStartupError
from sandbox.core.result import TrapReason
from sandbox.host import guest_tree, poll
from sandbox.host.control import CellControl
from sandbox.host.engine import shared_engine
from sandbox.host.guest import BOOT_LIMITS, BootSpec, CellRun, track
from sandbox.host.guest_store import GuestStore
from sandbox.host.limits import CellLimits
from sandbox.host.module_cache import load_module
from sandbox.host.tool_channel import (
    TOOL_ANSWER_FILE,
    TOOL_REQUEST_FILE,
    ToolHandler,
    ToolReply,
    failure,
)
from sandbox.host.wasi import CONTROL_GUEST_PATH, GuestFilesystem

# How long past its deadline (or its cancel) a cell may stay silent before the host gives up
# on the guest (only a guest stuck inside a long host call, which epochs cannot interrupt,
# gets there).
_UNRESPONSIVE_GRACE_SECONDS = 5.0
_CANCEL_GRACE_SECONDS = 1.0
# How often a caller waiting for a cancelled cell looks at the clock.
_CANCEL_POLL_SECONDS = 0.05


class ParkedProgram(Protocol):
    """A runtime whose driver loops inside the interpreter."""

    name: str
    cell_file: str

    def argv(self, driver_args: list[str]) -> list[str]:
        """The interpreter command line that runs the driver with ``driver_args`` (the WASI argv)."""

    def start(self, store: wasmtime.Store, instance: wasmtime.Instance, argv: list[str]) -> None:
        """Run the driver; returns only when the driver ends."""


class ParkedGuest:
    """One booted parked-driver interpreter, owned by one sandbox at a time."""

    def __init__(self, spec: BootSpec, program: ParkedProgram, workspace: Path) -> None:
        self.spec = spec
        self._program = program
        self._workspace = workspace
        # Both made by the guest's thread (see _main) before it reports ready.
        self._control_dir: Path | None = None
        self._cell_fd = -1
        self._answer_fd = -1  # tool answers, in the control directory too
        self._requests: queue.SimpleQueue[tuple[CellLimits, CellControl | None] | None] = (
            queue.SimpleQueue()
        )
        self._replies: queue.SimpleQueue[CellRun] = queue.SimpleQueue()
        self._hypercall_token = poll.new_hypercall_token()
        self._guest_store: GuestStore | None = None
        self._tools: ToolHandler | None = None  # the cell in progress's, on the guest thread
        self._alive = True
        self._closed = False
        self._ready = False
        self._thread = threading.Thread(
            target=self._main, name=f"llm-wasm-sandbox-{program.name}", daemon=True
        )
        track(self, self._thread)

    @property
    def alive(self) -> bool:
        return self._alive and not self._closed

    def wait_ready(self) -> None:
        """Block until the interpreter has booted; raise GuestStartupError if it could not."""
        if self._ready:
            return
        boot = self._replies.get()
        if not boot.guest_alive:
            self.close()
            raise _boot_failure(self.spec, boot)
        self._ready = True

    def run_cell(
        self, code: str, limits: CellLimits, control: CellControl | None = None
    ) -> CellRun:
        """Run ``code`` in this interpreter under ``limits``; never raises for guest failures.

        The guest's thread stops a cancelled cell itself and replies as usual; the wait here
        only gives up on a guest that does not reply (stuck in a host call) soon after.
        """
        self.wait_ready()
        if not self.alive:
            raise RuntimeError("this guest has stopped; boot a new one")
        source = code.encode("utf-8", errors="surrogatepass")
        os.pwrite(self._cell_fd, source, 0)
        os.ftruncate(self._cell_fd, len(source))
        self._requests.put((limits, control))
        give_up = time.monotonic() + limits.timeout_seconds + _UNRESPONSIVE_GRACE_SECONDS
        while True:
            cancelled_at = control.cancelled_at if control is not None else None
            if cancelled_at is not None:
                give_up = min(give_up, cancelled_at + _CANCEL_GRACE_SECONDS)
            wait = give_up - time.monotonic()
            if wait <= 0:
                break
            try:
                # Only a control can shorten the wait, so only then is it cut into polls.
                return self._replies.get(
                    timeout=min(wait, _CANCEL_POLL_SECONDS) if control is not None else wait
                )
            except queue.Empty:
                continue
        self._alive = False
        self.close()
        cancelled = control is not None and control.cancelled
        return CellRun(
            exit_code=-1,
            trap=TrapReason.CANCELLED if cancelled else TrapReason.TIMEOUT,
            trap_message="the guest did not stop when asked and was abandoned",
            guest_alive=False,
        )

    def close(self) -> None:
        """Stop the interpreter; its thread then frees the store and the control directory."""
        if self._closed:
            return
        self._closed = True
        if self._guest_store is not None:
            self._guest_store.wake()
        self._requests.put(None)

    def join(self, timeout: float) -> None:
        """Wait for the guest thread to finish cleaning up after close()."""
        self._thread.join(timeout)

    # --- guest thread -------------------------------------------------------------------

    def _main(self) -> None:
        """Run the guest; everything it leaves on disk is made and removed on this thread.

        The thread is tracked before it starts, so the exit clean-up always waits for it to
        remove the control directory; a directory made by the starting thread could be made
        just as the process exits, with nobody left to remove it.
        """
        try:
            self._run_guest()
        finally:
            if self._guest_store is not None:
                self._guest_store.free()
            for descriptor in (self._cell_fd, self._answer_fd):
                if descriptor >= 0:
                    os.close(descriptor)
            if self._control_dir is not None:
                shutil.rmtree(self._control_dir, ignore_errors=True)

    def _make_control_files(self) -> Path:
        control_dir = self._control_dir = Path(tempfile.mkdtemp(prefix="llm-wasm-sandbox-control-"))
        # Kept open for the guest's life: rewriting it in place is two syscalls per cell,
        # where creating and truncating a file by name costs far more on overlay filesystems.
        self._cell_fd = os.open(
            control_dir / self._program.cell_file, os.O_RDWR | os.O_CREAT, 0o644
        )
        self._answer_fd = os.open(control_dir / TOOL_ANSWER_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        return control_dir

    def _run_guest(self) -> None:
        argv = self._program.argv(
            [
                f"{poll.HYPERCALL_BASE_MS}:{self._hypercall_token}:{poll.HYPERCALL_STATUS_RANGE}",
                f"{CONTROL_GUEST_PATH}/{self._program.cell_file}",
                self.spec.workspace_guest_path,
                self.spec.globals_dir or "",
                f"{self.spec.workspace_guest_path.rstrip('/')}/{TOOL_REQUEST_FILE}",
                f"{CONTROL_GUEST_PATH}/{TOOL_ANSWER_FILE}",
            ]
        )
        try:
            control_dir = self._make_control_files()
            guest_store = self._guest_store = GuestStore(
                memory_bytes=self.spec.memory_bytes,
                argv=argv,
                env=dict(self.spec.env),
                filesystem=GuestFilesystem(
                    workspace=self._workspace,
                    workspace_guest_path=self.spec.workspace_guest_path,
                    control_dir=control_dir,
                    read_only_mounts=self.spec.read_only_mounts,
                ),
                boot_limits=BOOT_LIMITS,
                on_hypercall=self._hypercall,
                hypercall_token=self._hypercall_token,
            )
            module = load_module(shared_engine(), self.spec.program.binary)
            instance = guest_store.instantiate(module)
            assert guest_store.store is not None
            self._program.start(guest_store.store, instance, argv)
            ending = guest_store.report(
                0, trap=TrapReason.GUEST_EXIT, trap_message="the driver returned"
            )
        except Exception as error:  # every guest failure becomes a result, never a host crash
            if self._closed:
                return  # the trap we asked for on close: nobody waits for a result
            if self._guest_store is None:  # no interpreter yet: the host could not set one up
                ending = CellRun(
                    exit_code=-1, trap=TrapReason.GUEST_CRASH, trap_message=f"host set-up: {error}"
                )
            else:
                ending = self._guest_store.stopped_by(error)
        self._alive = False
        ending.guest_alive = False
        self._replies.put(ending)

    def _hypercall(self, caller: wasmtime.Caller, memory: wasmtime.Memory, status: int) -> None:
        guest_store = self._guest_store
        assert guest_store is not None
        if status == poll.STATUS_TOOL_CALL:
            reply = self._tool_reply(guest_store)
            if reply.stop:
                guest_store.interrupt()  # the deadline passed in the tool: a timeout
                return
            try:  # in place: the guest reads it only once this hypercall returns
                os.pwrite(self._answer_fd, reply.payload, 0)
                os.ftruncate(self._answer_fd, len(reply.payload))
            except OSError:
                guest_store.interrupt()  # no answer to give (the host's disk): stop the cell
            return
        out_of_memory = bool(status & poll.STATUS_MEMORY_ERROR)
        self._replies.put(
            guest_store.report(
                status & 0xFF,
                trap=TrapReason.MEMORY_LIMIT if out_of_memory else None,
                trap_message="the guest ran out of memory" if out_of_memory else "",
            )
        )
        request = self._requests.get()
        if request is None:
            guest_store.interrupt()  # closed while parked: unwind the guest
            return
        self._tools = request[0].tools
        guest_store.begin_cell(*request)

    def _tool_reply(self, guest_store: GuestStore) -> ToolReply:
        """The answer to the request the driver wrote in the workspace; never raises."""
        tools = self._tools
        if tools is None:
            return ToolReply(failure("unknown_tool", "this sandbox was given no host tools"))
        try:
            request = guest_tree.read_file(
                self._workspace, TOOL_REQUEST_FILE, max_bytes=tools.request_cap
            )
        except guest_tree.FileTooLargeError as error:
            return tools.admit(error.size) or ToolReply(failure("limit", str(error)))
        except (OSError, ValueError) as error:  # WorkspacePathError is a ValueError too
            return ToolReply(failure("protocol", f"the tool request could not be read: {error}"))
        # One JSON line; what follows it is a longer earlier request's tail.
        return tools.handle(request.partition(b"\n")[0], guest_store.deadline)


def _boot_failure(spec: BootSpec, boot: CellRun) -> GuestStartupError:
    """The error for an interpreter that could not boot, with the hint the reason allows."""
    detail = boot.stderr.text().strip() or boot.trap_message
    hint = (
        f"; memory_bytes={spec.memory_bytes} is below what it needs to start"
        if boot.trap is TrapReason.MEMORY_LIMIT
        else ""
    )
    return GuestStartupError(
        f"the {spec.program.name} interpreter failed to boot ({boot.trap}: {detail[-2000:]}){hint}"
    )
