"""A wasmtime Store wired with what every guest gets, whatever its runtime.

Limits (memory, fuel, epoch deadline), the WASI context (explicit argv and environment, the
workspace, read-only mounts, bounded output captures), the disk-quota router, and our own
``poll_oneoff``, which caps every sleep at the cell's deadline, and the epoch check that
stops a cancelled or overdue cell and flushes its streamed output. The parked-driver guest
(``guest.py``) and the reactor guest (``reactor.py``) differ only in how a cell reaches the
interpreter; everything here is shared.

A Store is used by one thread at a time: the parked guest's own thread, or the thread running
a reactor turn under the sandbox's lock. Each cell runs in epoch slices of
``EPOCH_SLICE_SECONDS``: at the end of each, wasmtime calls our epoch callback on the guest's
thread (``epoch.py``), which stops the guest if its ``CellControl`` was cancelled or its deadline
passed, and otherwise grants the next slice. That bounds a cancel to a slice in a tight loop;
a sleeping guest is woken at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import wasmtime

from sandbox.core.result import TrapReason
from sandbox.host import guest_memory, poll
from sandbox.host.capture import OutputCapture
from sandbox.host.control import CellControl, OutputStream
from sandbox.host.disk_quota import DiskQuota
from sandbox.host.engine import deadline_ticks, shared_engine
from sandbox.host.epoch import EpochWatch
from sandbox.host.limits import CellLimits, classify_stop
from sandbox.host.wasi import GuestFilesystem, build_wasi_config

# How often a running guest's thread checks for a cancel, its deadline and output to flush:
# the bound on how long a cancel takes in a loop that never calls the host.
EPOCH_SLICE_SECONDS = 0.01
_STOP_MESSAGES = {
    TrapReason.CANCELLED: "the cell was cancelled by the caller",
    TrapReason.TIMEOUT: "the cell ran past its wall-clock deadline",
}

# A host function the runtime adds to the linker: module, name, type, callable.
HostImport = tuple[str, str, wasmtime.FuncType, Callable[..., object]]


@dataclass
class CellRun:
    """What a guest reports at the end of a cell (or of the guest)."""

    exit_code: int
    trap: TrapReason | None = None
    trap_message: str = ""
    fuel_left: int = 0
    memory_bytes: int = 0
    guest_alive: bool = True
    stdout: OutputCapture = field(default_factory=lambda: OutputCapture(0))
    stderr: OutputCapture = field(default_factory=lambda: OutputCapture(0))
    fuel_consumed: int = 0
    # A markdown table of the cell's last value (a DataFrame or Series), for MCP clients.
    display_markdown: str | None = None
    # Calls of the caller's output callback that raised, and the first such error.
    output_callback_errors: int = 0
    output_callback_error: str | None = None
    # False only when the guest made no call that could have changed a workspace file.
    workspace_changed: bool = True


class GuestStore:
    """One guest's Store, WASI context, quota router and sleeps."""

    def __init__(
        self,
        *,
        memory_bytes: int,
        argv: list[str],
        env: dict[str, str],
        filesystem: GuestFilesystem,
        boot_limits: CellLimits,
        on_hypercall: Callable[[wasmtime.Caller, wasmtime.Memory, int], None] | None = None,
        hypercall_token: int = -1,
    ) -> None:
        self.memory_bytes_limit = memory_bytes
        self._filesystem = filesystem
        self._on_hypercall = on_hypercall
        self._hypercall_token = hypercall_token
        self._wake = threading.Event()
        self._closing = False
        self._control: CellControl | None = None
        self._stream: OutputStream | None = None
        # Why the host is stopping the guest, read when the stop reaches Python as an error.
        self._stop: TrapReason | None = None
        self.disk = DiskQuota(self._write_output)
        self.stdout = OutputCapture(boot_limits.stdout_max_bytes)
        self.stderr = OutputCapture(boot_limits.stderr_max_bytes)
        self.memory: wasmtime.Memory | None = None
        self.store: wasmtime.Store | None = wasmtime.Store(shared_engine())
        self.store.set_limits(memory_size=memory_bytes)
        self._epoch_watch = EpochWatch(
            self.store, self._next_slice, b"stopped by the host", self._interrupted_by_user
        )
        self._deadline = 0.0
        self._fuel = 0
        self._boot_limits = boot_limits
        self._clock = poll.GuestClock()  # wasmtime starts the guest's monotonic clock here too
        self.store.set_wasi(build_wasi_config(argv, env.items(), filesystem))

    def instantiate(
        self, module: wasmtime.Module, extra_imports: tuple[HostImport, ...] = ()
    ) -> wasmtime.Instance:
        """Instantiate ``module`` with WASI, the quota router, our poll_oneoff and extras.

        The boot's limits start here, not when the store was made: getting ``module`` may
        have meant compiling it first, minutes on a new machine, which is not the guest's time.
        """
        store = self._live_store()
        self.begin_cell(self._boot_limits)
        engine = shared_engine()
        linker = wasmtime.Linker(engine)
        linker.allow_shadowing = True
        linker.define_wasi()
        self.disk.define_imports(engine, store, linker, self._filesystem.first_free_fd)
        i32 = wasmtime.ValType.i32()
        imports: tuple[HostImport, ...] = (
            (
                "wasi_snapshot_preview1",
                "poll_oneoff",
                wasmtime.FuncType([i32, i32, i32, i32], [i32]),
                self._poll_oneoff,
            ),
            *extra_imports,
        )
        for module_name, name, kind, function in imports:
            linker.define_func(module_name, name, kind, function, access_caller=True)
        instance = linker.instantiate(store, module)
        memory = instance.exports(store)["memory"]
        assert isinstance(memory, wasmtime.Memory)
        self.memory = memory
        self.disk.attach(engine, store, memory)
        return instance

    def rebind(
        self,
        *,
        memory_bytes: int,
        argv: list[str],
        env: dict[str, str],
        filesystem: GuestFilesystem,
    ) -> None:
        """Hand the instance to a new guest: a new WASI context (its descriptors, the old
        ones closed with the old context), memory limit and quota router state, as if new.

        Only for an instance between two turns whose memory was reset to its module's.
        """
        store = self._live_store()
        self.memory_bytes_limit = memory_bytes
        store.set_limits(memory_size=memory_bytes)
        self._filesystem = filesystem
        self._clock = poll.GuestClock()
        store.set_wasi(build_wasi_config(argv, env.items(), filesystem))
        self.disk.reset(store, filesystem.first_free_fd)
        self._closing = False
        self._wake.clear()
        self._stop = None
        self.begin_cell(self._boot_limits)

    def release_files(self) -> None:
        """Close every descriptor the guest holds (a workspace file kept open keeps its disk):
        the store gets an empty WASI context, until rebind() gives it a real one."""
        self._live_store().set_wasi(wasmtime.WasiConfig())

    def _write_output(self, fd: int, data: bytes) -> None:
        kept = (self.stdout if fd == 1 else self.stderr).write(data)
        if self._stream is not None and kept:  # only what the caps keep is streamed
            self._stream.write(fd, kept)

    def begin_cell(self, limits: CellLimits, control: CellControl | None = None) -> None:
        """Fresh fuel, deadline, disk budget and output captures for one cell (its thread)."""
        store = self._live_store()
        store.set_fuel(limits.fuel)
        self._fuel = limits.fuel
        if self.memory is not None:
            self.disk.begin_call(store, limits.disk_bytes, limits.disk_entries)
        self._stop = None
        self._deadline = time.monotonic() + limits.timeout_seconds
        store.set_epoch_deadline(deadline_ticks(min(EPOCH_SLICE_SECONDS, limits.timeout_seconds)))
        self.stdout = OutputCapture(limits.stdout_max_bytes)
        self.stderr = OutputCapture(limits.stderr_max_bytes)
        self._control = control
        self._stream = (
            OutputStream(control.on_output)
            if control is not None and control.on_output is not None
            else None
        )
        if not self._closing:
            self._wake.clear()  # a cancel of an earlier cell must not cut this cell's sleeps
        if control is not None:
            control.attach(self._wake.set)

    def _end_cell(self, run: CellRun) -> CellRun:
        """Flush the streamed output (before the caller sees the result), note whether the
        workspace may have changed, and let go of the cell's control."""
        if self.store is not None and self.memory is not None:
            run.workspace_changed = self.disk.workspace_changed(self.store)
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
            run.output_callback_errors = stream.callback_errors
            run.output_callback_error = stream.first_callback_error
        control, self._control = self._control, None
        if control is not None:
            control.detach(self._wake.set)
        return run

    def _next_slice(self) -> int | None:
        """The epoch callback's decision, on the guest's thread: more ticks, or stop (None)."""
        if self._stream is not None:
            self._stream.flush_due()
        if self._stop is None:
            if self._control is not None and self._control.cancelled:
                self._stop = TrapReason.CANCELLED
            elif time.monotonic() >= self._deadline:
                self._stop = TrapReason.TIMEOUT
        if self._stop is not None:
            return None
        remaining = self._deadline - time.monotonic()
        return deadline_ticks(min(EPOCH_SLICE_SECONDS, remaining))

    def _interrupted_by_user(self) -> None:
        """Ctrl-C reached the guest's thread (a Python cell on the main thread): a cancel."""
        self._stop = TrapReason.CANCELLED

    @property
    def deadline(self) -> float:
        """When the cell in progress must end, on time.monotonic()'s clock."""
        return self._deadline

    def report(self, exit_code: int, **details: object) -> CellRun:
        """The CellRun of a cell that ended normally with ``exit_code``."""
        run = CellRun(
            exit_code=exit_code,
            fuel_left=self.fuel_left(),
            memory_bytes=self.memory_bytes(),
            stdout=self.stdout,
            stderr=self.stderr,
            **details,  # type: ignore[arg-type]
        )
        run.fuel_consumed = self._fuel - run.fuel_left
        return self._end_cell(run)

    def stopped_by(self, error: Exception) -> CellRun:
        """The CellRun of a cell (or boot) that a trap, exit, crash or the host ended."""
        memory_bytes = self.memory_bytes()
        stop = None if isinstance(error, wasmtime.ExitTrap) else self._stop
        run = CellRun(
            exit_code=error.code if isinstance(error, wasmtime.ExitTrap) else -1,
            trap=stop or classify_stop(error, memory_bytes, self.memory_bytes_limit),
            trap_message=_STOP_MESSAGES[stop] if stop in _STOP_MESSAGES else _describe(error),
            fuel_left=self.fuel_left(),
            memory_bytes=memory_bytes,
            guest_alive=False,
            stdout=self.stdout,
            stderr=self.stderr,
        )
        run.fuel_consumed = self._fuel - run.fuel_left
        return self._end_cell(run)

    def fuel_left(self) -> int:
        return self.store.get_fuel() if self.store is not None else 0

    def memory_bytes(self) -> int:
        if self.memory is None or self.store is None:
            return 0
        return int(self.memory.data_len(self.store))

    def interrupt(self, reason: TrapReason = TrapReason.TIMEOUT) -> None:
        """Make the guest stop (as ``reason``) as soon as our host call returns.

        Host functions never raise to stop a guest: wasmtime-py keeps the exception of a host
        function in one process-wide slot until the trap reaches Python, so with guests on
        several threads another thread's trap could pick it up (and a closed guest's shutdown
        would end somebody else's cell).
        """
        self._stop = reason
        self._live_store().set_epoch_deadline(0)  # the epoch callback then stops the guest

    def wake(self) -> None:
        """End a sleep in progress early, and every later one (the guest is being closed)."""
        self._closing = True
        self._wake.set()

    def free(self) -> None:
        """Delete the Store now, on the thread that used it, instead of leaving it to the GC.

        wasmtime-py keeps each host callback (our poll_oneoff, the quota's charge functions,
        the stdout/stderr lambdas) in a module-level registry until the native Store that
        uses it is deleted. The callbacks hold this object, which holds the Store, so the
        Python Store is always reachable and never deleted: the cycle runs through native
        code, where the garbage collector cannot see it. Closing the Store drops the
        callbacks, the guest's linear memory and its open files, deleted ones included.
        """
        store, self.store, self.memory = self.store, None, None
        if store is not None:
            store.close()

    def _live_store(self) -> wasmtime.Store:
        assert self.store is not None, "the store was freed"
        return self.store

    def _poll_oneoff(
        self, caller: wasmtime.Caller, in_ptr: int, out_ptr: int, count: int, nevents_ptr: int
    ) -> int:
        memory = caller["memory"]
        assert isinstance(memory, wasmtime.Memory)
        raw = guest_memory.read(caller, memory, in_ptr, count * 48) if count else None
        if raw is None:
            return poll.ERRNO_INVAL
        subscriptions = poll.parse_subscriptions(raw)
        status = (
            poll.hypercall_status(subscriptions, self._hypercall_token)
            if self._on_hypercall is not None
            else None
        )
        if status is not None and self._on_hypercall is not None:
            self._on_hypercall(caller, memory, status)
            events = subscriptions
        else:
            wait, events = poll.fired(subscriptions, self._clock)
            self._sleep(wait)
        answer = b"".join(poll.encode_event(event) for event in events)
        if not guest_memory.write(caller, memory, answer, out_ptr) or not guest_memory.write(
            caller, memory, len(events).to_bytes(4, "little"), nevents_ptr
        ):
            return poll.ERRNO_FAULT
        return poll.ERRNO_SUCCESS

    def _sleep(self, seconds: float) -> None:
        """Sleep, capped at the deadline; flush streamed output that falls due meanwhile."""
        now = time.monotonic()
        overdue = seconds > self._deadline - now
        end = min(now + seconds, self._deadline)
        stream = self._stream
        while not self._wake.is_set():
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            due = stream.seconds_until_due() if stream is not None else None
            if stream is not None and due is not None and due < remaining:
                self._wake.wait(due)
                stream.flush_due()
            else:
                self._wake.wait(remaining)
        if self._control is not None and self._control.cancelled:
            self.interrupt(TrapReason.CANCELLED)
        elif overdue:
            self.interrupt()  # a timeout, like any epoch interruption


def _describe(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
