"""A live guest interpreter on its own thread, fed one cell at a time.

The guest driver runs a loop inside WebAssembly: hypercall, read the cell file, run it, report
the status with the next hypercall. While it waits, the guest thread is parked inside our
``poll_oneoff`` on a queue, so the interpreter's whole state survives between cells and a cell
costs one thread hand-off instead of an interpreter boot.

Everything that touches the wasmtime Store happens on the guest thread (a Store is not
thread-safe); the caller's thread only exchanges messages with it. Per-cell fuel and deadlines
are set inside the hypercall, just before the guest resumes.
"""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import wasmtime

from sandbox.core.errors import GuestStartupError
from sandbox.core.result import TrapReason
from sandbox.host import poll
from sandbox.host.capture import OutputCapture
from sandbox.host.disk_quota import DiskQuota
from sandbox.host.engine import deadline_ticks, shared_engine
from sandbox.host.limits import CellLimits, classify_stop
from sandbox.host.module_cache import GuestBinary, load_module
from sandbox.host.wasi import CONTROL_GUEST_PATH, GuestFilesystem, build_wasi_config

_BOOT_LIMITS = CellLimits(
    fuel=20_000_000_000,
    timeout_seconds=120.0,
    stdout_max_bytes=65536,
    stderr_max_bytes=65536,
    disk_bytes=0,
    disk_entries=0,
)
# How long past its deadline a cell may stay silent before the host gives up on the guest
# (only a guest stuck inside a long host call, which epochs cannot interrupt, gets there).
_UNRESPONSIVE_GRACE_SECONDS = 5.0


class GuestProgram(Protocol):
    """What a language runtime tells the host about its interpreter and driver."""

    name: str
    cell_file: str

    @property
    def binary(self) -> GuestBinary: ...

    def argv(self, driver_args: list[str]) -> list[str]:
        """The interpreter command line that runs the driver with ``driver_args`` (the WASI argv)."""

    def wasi_env(self) -> dict[str, str]: ...

    def guest_mounts(self) -> tuple[tuple[Path, str], ...]:
        """Read-only directories every guest of this runtime gets (host path, guest path)."""

    def start(self, store: wasmtime.Store, instance: wasmtime.Instance, argv: list[str]) -> None:
        """Run the driver; returns only when the driver ends."""


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


@dataclass
class CellRun:
    """What the guest thread reports at the end of a cell (or of the guest)."""

    exit_code: int
    trap: TrapReason | None = None
    trap_message: str = ""
    fuel_left: int = 0
    memory_bytes: int = 0
    guest_alive: bool = True
    stdout: OutputCapture = field(default_factory=lambda: OutputCapture(0))
    stderr: OutputCapture = field(default_factory=lambda: OutputCapture(0))
    fuel_consumed: int = 0


@dataclass
class _CellRequest:
    limits: CellLimits
    stdout: OutputCapture
    stderr: OutputCapture


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
_instances: weakref.WeakSet[GuestInstance] = weakref.WeakSet()
_instances_lock = threading.Lock()
_exiting = False


def _start(guest: GuestInstance, thread: threading.Thread) -> None:
    """Start a guest's thread and track it for the exit clean-up, which none may start after.

    One step under the lock, so the clean-up never sees a guest whose thread has not started.
    """
    with _instances_lock:
        if _exiting:
            raise GuestStartupError("the Python process is exiting; no new interpreter starts")
        _instances.add(guest)
        thread.start()


@atexit.register
def _stop_all_guests() -> None:
    """Close every guest and let its thread remove its control directory before exit."""
    global _exiting
    with _instances_lock:
        _exiting = True
        guests = list(_instances)
    for guest in guests:
        guest.close()
    deadline = time.monotonic() + 2.0
    for guest in guests:
        guest.join(max(0.0, deadline - time.monotonic()))


class GuestInstance:
    """One booted interpreter, owned by one sandbox at a time."""

    def __init__(self, spec: BootSpec, workspace: Path) -> None:
        self.spec = spec
        self._workspace = workspace
        self._control_dir = Path(tempfile.mkdtemp(prefix="llm-wasm-sandbox-control-"))
        # Kept open for the guest's life: rewriting it in place is two syscalls per cell,
        # where creating and truncating a file by name costs far more on overlay filesystems.
        self._cell_fd = os.open(
            self._control_dir / spec.program.cell_file, os.O_RDWR | os.O_CREAT, 0o644
        )
        self._requests: queue.SimpleQueue[_CellRequest | None] = queue.SimpleQueue()
        self._replies: queue.SimpleQueue[CellRun] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._clock = poll.GuestClock()
        self._hypercall_token = poll.new_hypercall_token()
        self._disk = DiskQuota()
        self._current = _CellRequest(
            _BOOT_LIMITS,
            OutputCapture(_BOOT_LIMITS.stdout_max_bytes),
            OutputCapture(_BOOT_LIMITS.stderr_max_bytes),
        )
        self._deadline = time.monotonic() + _BOOT_LIMITS.timeout_seconds
        self._store: wasmtime.Store | None = None
        self._memory: wasmtime.Memory | None = None
        self._alive = True
        self._closed = False
        self._ready = False
        self._thread = threading.Thread(
            target=self._main, name=f"llm-wasm-sandbox-{spec.program.name}", daemon=True
        )
        try:
            _start(self, self._thread)
        except GuestStartupError:
            os.close(self._cell_fd)
            shutil.rmtree(self._control_dir, ignore_errors=True)
            raise

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
            detail = boot.stderr.text().strip() or boot.trap_message
            hint = (
                f"; memory_bytes={self.spec.memory_bytes} is below what it needs to start"
                if boot.trap is TrapReason.MEMORY_LIMIT
                else ""
            )
            raise GuestStartupError(
                f"the {self.spec.program.name} interpreter failed to boot "
                f"({boot.trap}: {detail[-2000:]}){hint}"
            )
        self._ready = True

    def run_cell(self, code: str, limits: CellLimits) -> CellRun:
        """Run ``code`` in this interpreter under ``limits``; never raises for guest failures."""
        self.wait_ready()
        if not self.alive:
            raise RuntimeError("this guest has stopped; boot a new one")
        source = code.encode("utf-8", errors="surrogatepass")
        os.pwrite(self._cell_fd, source, 0)
        os.ftruncate(self._cell_fd, len(source))
        request = _CellRequest(
            limits, OutputCapture(limits.stdout_max_bytes), OutputCapture(limits.stderr_max_bytes)
        )
        try:
            self._requests.put(request)
            run = self._replies.get(timeout=limits.timeout_seconds + _UNRESPONSIVE_GRACE_SECONDS)
        except queue.Empty:
            self._abandon()
            run = CellRun(
                exit_code=-1,
                trap=TrapReason.TIMEOUT,
                trap_message="the guest did not return within its deadline and was abandoned",
                guest_alive=False,
            )
        run.stdout, run.stderr = request.stdout, request.stderr
        run.fuel_consumed = limits.fuel - run.fuel_left
        return run

    def close(self) -> None:
        """Stop the interpreter; its thread then removes the control directory (not the workspace)."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._requests.put(None)

    def join(self, timeout: float) -> None:
        """Wait for the guest thread to finish cleaning up after close()."""
        self._thread.join(timeout)

    def _abandon(self) -> None:
        self._alive = False
        self.close()

    # --- guest thread -------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._run_guest()
        finally:
            self._free_store()
            os.close(self._cell_fd)
            shutil.rmtree(self._control_dir, ignore_errors=True)

    def _free_store(self) -> None:
        """Delete the Store now, on the thread that used it, instead of leaving it to the GC.

        wasmtime-py keeps each host callback (our poll_oneoff, the quota's charge functions,
        the stdout/stderr lambdas) in a module-level registry until the native Store that
        uses it is deleted. The callbacks hold this GuestInstance, which holds the Store, so
        the Python Store is always reachable and never deleted: the cycle runs through native
        code, where the garbage collector cannot see it. Closing the Store drops the
        callbacks, the guest's linear memory and its open files, deleted ones included.
        """
        store, self._store, self._memory = self._store, None, None
        if store is not None:
            store.close()

    def _run_guest(self) -> None:
        try:
            store = self._boot_store()
            module = load_module(shared_engine(), self.spec.program.binary)
            instance = self._linker(store).instantiate(store, module)
            memory = instance.exports(store)["memory"]
            assert isinstance(memory, wasmtime.Memory)
            self._memory = memory
            self._disk.attach(shared_engine(), store, memory)
            self.spec.program.start(store, instance, self._argv())
            ending = CellRun(
                exit_code=0, trap=TrapReason.GUEST_EXIT, trap_message="the driver returned"
            )
        except Exception as error:  # every guest failure becomes a result, never a host crash
            if self._closed:
                return  # the trap we asked for in _interrupt(): nobody waits for a result
            ending = self._stopped_by(error)
        self._alive = False
        ending.guest_alive = False
        if not self._ready:
            ending.stderr = self._current.stderr
        self._replies.put(ending)

    def _boot_store(self) -> wasmtime.Store:
        store = wasmtime.Store(shared_engine())
        self._store = store  # from the start, so _free_store() deletes it whatever fails next
        store.set_limits(memory_size=self.spec.memory_bytes)
        store.set_fuel(_BOOT_LIMITS.fuel)
        store.set_epoch_deadline(deadline_ticks(_BOOT_LIMITS.timeout_seconds))
        filesystem = self._filesystem = GuestFilesystem(
            workspace=self._workspace,
            workspace_guest_path=self.spec.workspace_guest_path,
            control_dir=self._control_dir,
            read_only_mounts=self.spec.read_only_mounts,
        )
        env = {**dict(self.spec.env), **self.spec.program.wasi_env()}
        self._clock = poll.GuestClock()  # wasmtime starts the guest's monotonic clock here too
        store.set_wasi(
            build_wasi_config(
                self._argv(),
                env.items(),
                filesystem,
                lambda data: self._current.stdout.write(data),
                lambda data: self._current.stderr.write(data),
            )
        )
        return store

    def _argv(self) -> list[str]:
        """Every driver takes the same arguments: hypercall, cell file, workspace, globals dir.

        The hypercall is given as its base and this interpreter's secret token; drivers erase
        their argv before any cell runs.
        """
        return self.spec.program.argv(
            [
                f"{poll.HYPERCALL_BASE_MS}:{self._hypercall_token}:{poll.HYPERCALL_STATUS_RANGE}",
                f"{CONTROL_GUEST_PATH}/{self.spec.program.cell_file}",
                self.spec.workspace_guest_path,
                self.spec.globals_dir or "",
            ]
        )

    def _linker(self, store: wasmtime.Store) -> wasmtime.Linker:
        engine = shared_engine()
        linker = wasmtime.Linker(engine)
        linker.allow_shadowing = True
        linker.define_wasi()
        self._disk.define_imports(engine, store, linker, self._filesystem.first_free_fd)
        i32 = wasmtime.ValType.i32()
        linker.define_func(
            "wasi_snapshot_preview1",
            "poll_oneoff",
            wasmtime.FuncType([i32, i32, i32, i32], [i32]),
            self._poll_oneoff,
            access_caller=True,
        )
        return linker

    def _poll_oneoff(
        self, caller: wasmtime.Caller, in_ptr: int, out_ptr: int, count: int, nevents_ptr: int
    ) -> int:
        memory = caller["memory"]
        assert isinstance(memory, wasmtime.Memory)
        if count == 0:
            return poll.ERRNO_INVAL
        subscriptions = poll.parse_subscriptions(memory.read(caller, in_ptr, in_ptr + count * 48))
        status = poll.hypercall_status(subscriptions, self._hypercall_token)
        if status is not None:
            self._hypercall(caller, memory, status)
            events = subscriptions
        else:
            wait, events = poll.fired(subscriptions, self._clock)
            self._sleep(wait)
        memory.write(caller, b"".join(poll.encode_event(event) for event in events), out_ptr)
        memory.write(caller, len(events).to_bytes(4, "little"), nevents_ptr)
        return poll.ERRNO_SUCCESS

    def _sleep(self, seconds: float) -> None:
        remaining = self._deadline - time.monotonic()
        if seconds <= remaining:
            self._wake.wait(seconds)
            return
        self._wake.wait(max(0.0, remaining))
        self._interrupt()  # classified as a timeout, like any epoch interruption

    def _interrupt(self) -> None:
        """Make the guest trap (epoch deadline reached) as soon as our host call returns.

        Host functions never raise to stop a guest: wasmtime-py keeps the exception of a host
        function in one process-wide slot until the trap reaches Python, so with guests on
        several threads another thread's trap could pick it up (and a closed guest's shutdown
        would end somebody else's cell).
        """
        assert self._store is not None
        self._store.set_epoch_deadline(0)

    def _hypercall(self, caller: wasmtime.Caller, memory: wasmtime.Memory, status: int) -> None:
        assert self._store is not None
        out_of_memory = bool(status & poll.STATUS_MEMORY_ERROR)
        # A driver too full to take the cell asks to be replaced; the caller then closes it.
        too_full = bool(status & poll.STATUS_DRIVER_OUT_OF_MEMORY)
        if too_full:
            self._alive = False
        self._replies.put(
            CellRun(
                exit_code=status & 0xFF,
                trap=TrapReason.MEMORY_LIMIT if out_of_memory else None,
                trap_message=(
                    "the interpreter's memory is full of the session's data, so it could not "
                    "take the cell; it was replaced by a fresh one"
                    if too_full
                    else "the guest ran out of memory (MemoryError)"
                    if out_of_memory
                    else ""
                ),
                fuel_left=self._store.get_fuel(),
                memory_bytes=memory.data_len(caller),
                guest_alive=not too_full,
            )
        )
        request = self._requests.get()
        if request is None:
            self._interrupt()  # closed while parked: unwind the guest
            return
        self._current = request
        self._store.set_fuel(request.limits.fuel)
        self._disk.begin_call(self._store, request.limits.disk_bytes, request.limits.disk_entries)
        self._store.set_epoch_deadline(deadline_ticks(request.limits.timeout_seconds))
        self._deadline = time.monotonic() + request.limits.timeout_seconds

    def _stopped_by(self, error: Exception) -> CellRun:
        memory_bytes = self._memory.data_len(self._store) if self._memory and self._store else 0
        reason = classify_stop(error, memory_bytes, self.spec.memory_bytes)
        exit_code = error.code if isinstance(error, wasmtime.ExitTrap) else -1
        fuel_left = self._store.get_fuel() if self._store else 0
        return CellRun(
            exit_code=exit_code,
            trap=reason,
            trap_message=_describe(error),
            fuel_left=fuel_left,
            memory_bytes=memory_bytes,
        )


def _describe(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
