"""A live guest on a reactor module: the host calls the module's ``turn`` export once per cell.

Between two turns the wasm stack is empty, so no thread waits inside the interpreter: a cell
runs on the caller's thread (under its sandbox's lock), ends when ``turn`` returns, and no
guest code can end it early or answer for the next one. A turn's bytes are the session's
settings (one line) and the cell's source, which the snapshot's driver takes as they are;
it reports a status other than 0 through the reactor's host door (``host.call``, which the
guest calls as ``_host.call``), and the markdown table of a cell's last value when that is a
DataFrame or Series (a cell can forge one, but only about itself).

Fresh instances come from the runtime's snapshot module: its data segments already hold an
interpreter with the driver loaded, mapped copy-on-write, so a boot is an instantiation. A
guest can also boot from a memory image of another (``memory_image.py``): checkpoints, forks
and sessions restored after eviction or a restart.
"""

from __future__ import annotations

import os
import struct
import threading
from importlib import metadata
from pathlib import Path
from typing import Protocol, runtime_checkable

import wasmtime

from sandbox.core.errors import CheckpointError, GuestStartupError
from sandbox.core.result import TrapReason
from sandbox.host import guest_memory, memory_image
from sandbox.host.capture import OutputCapture
from sandbox.host.control import CellControl
from sandbox.host.engine import engine_fingerprint
from sandbox.host.export_call import I32Export
from sandbox.host.guest import BOOT_LIMITS, BootSpec, CellRun, track
from sandbox.host.guest_store import GuestStore
from sandbox.host.limits import CellLimits, near_memory_limit
from sandbox.host.recycler import InterpreterRecycler
from sandbox.host.tool_channel import ToolHandler, failure
from sandbox.host.wasi import GuestFilesystem

# What the guest driver sends through the door (a protocol of ours).
REPORT_STATUS = b"\x00status "
# The driver's markdown table of a cell's last value; longer ones are dropped, not cut.
REPORT_DISPLAY = b"\x00display "
MAX_DISPLAY_BYTES = 16384
# A tool call or list from guest_lib/sandbox_tools.py: the rest is the JSON request.
REQUEST_TOOL = b"\x00tool "
_HEAD_BYTES = 16
STATUS_MEMORY_ERROR = 0x100
_CLOSE_WAIT_SECONDS = 2.0
_DOOR_NO_HOST = -1
_DOOR_FAULT = -2
_U32 = struct.Struct("<I")
# Exported constants of a snapshot (``MT19937_STATE_EXPORT`` + 0, 1, ...): addresses of
# Mersenne Twister states that each new interpreter gets from the OS's entropy.
MT19937_STATE_EXPORT = "__sandbox_mt19937_state_"
MT19937_STATE_BYTES = 624 * 4


class ReactorProgram(Protocol):
    """A runtime whose interpreter exports ``host_alloc`` and ``turn``."""

    name: str
    # Where closed interpreters wait for their next sandbox (None: each is freed).
    recycler: InterpreterRecycler | None

    def snapshot_module(self) -> wasmtime.Module:
        """The module fresh interpreters are instantiated from (built on first use)."""

    def snapshot_key(self) -> str:
        """The cache key of that module: what a memory image may be restored into."""

    def wasi_env(self) -> dict[str, str]: ...


@runtime_checkable
class ImageProgram(Protocol):
    """A runtime whose guests can be captured as memory images and booted from them."""

    def boot_from_image(
        self, spec: BootSpec, workspace: Path, image: memory_image.MemoryImage
    ) -> ReactorGuest:
        """A fresh interpreter whose memory is ``image`` (refused if over the memory limit)."""

    def state_identity(self, spec: BootSpec) -> dict[str, object]:
        """What an image of a guest booted from ``spec`` may only be restored into."""


def state_identity(program: ReactorProgram, spec: BootSpec) -> dict[str, object]:
    """The same module, engine and preopened directories (wasi-libc keeps their descriptor
    numbers in memory), and the driver settings the image's interpreter applied."""
    return {
        "snapshot": program.snapshot_key(),
        "engine": engine_fingerprint(),
        "wasmtime": metadata.version("wasmtime"),
        "preopens": [spec.workspace_guest_path] + [guest for _, guest in spec.read_only_mounts],
        "globals_dir": spec.globals_dir or "",
    }


class ReactorGuest:
    """One reactor interpreter, owned by one sandbox at a time."""

    def __init__(
        self,
        spec: BootSpec,
        program: ReactorProgram,
        workspace: Path,
        image: memory_image.MemoryImage | None = None,
    ) -> None:
        if image is not None and image.size > spec.memory_bytes:
            raise CheckpointError(
                f"the saved state needs {image.size} bytes of memory but the policy allows "
                f"memory_bytes={spec.memory_bytes}; raise memory_bytes to restore it"
            )
        self.spec = spec
        self._program = program
        self._turn_lock = threading.Lock()
        self._status: int | None = None
        self._display: str | None = None
        self._tools: ToolHandler | None = None
        self._alive = True
        self._settings = _settings(spec)
        self._guest_store = GuestStore(
            memory_bytes=spec.memory_bytes,
            argv=["python"],
            env=_environment(spec, program),
            filesystem=_filesystem(spec, workspace),
            boot_limits=BOOT_LIMITS,
        )
        i32 = wasmtime.ValType.i32()
        door = ("host", "call", wasmtime.FuncType([i32] * 4, [i32]), self._door)
        self._module = program.snapshot_module()
        try:
            instance = self._guest_store.instantiate(self._module, (door,))
            store = self._guest_store.store
            assert store is not None
            exports = instance.exports(store)
            self._alloc = I32Export(store, exports["host_alloc"])
            self._turn = I32Export(store, exports["turn"])
            reset = exports["__wasilibc_reset_preopens"]
            assert isinstance(reset, wasmtime.Func)
            self._reset_preopens = reset
            self._generator_states = [
                state.value(store)
                for name in exports
                if name.startswith(MT19937_STATE_EXPORT)
                and isinstance(state := exports[name], wasmtime.Global)
            ]
            if image is not None:  # the image's preopens are this spec's: same fds, same dirs
                assert self._guest_store.memory is not None
                memory_image.apply(store, self._guest_store.memory, image)
            else:
                # The snapshot remembers its builder's preopens; this instance has its own.
                reset(store)
                self._seed_generators()
        except Exception as error:
            run = self._guest_store.stopped_by(error)
            self._guest_store.free()
            hint = (
                f"; memory_bytes={spec.memory_bytes} is below the "
                f"{run.memory_bytes or 'snapshot'} bytes it needs to start"
                if run.trap is TrapReason.MEMORY_LIMIT or "memory" in str(error)
                else ""
            )
            raise GuestStartupError(
                f"the {program.name} interpreter failed to start ({error}){hint}"
            ) from None
        track(self)

    @property
    def alive(self) -> bool:
        return self._alive

    def wait_ready(self) -> None:
        """Booting is instantiating, done by the constructor."""

    def capture(self) -> memory_image.MemoryImage:
        """The interpreter's state between turns, as the pages that differ from the snapshot."""
        with self._turn_lock:
            store, memory = self._guest_store.store, self._guest_store.memory
            if not self._alive or store is None or memory is None:
                raise CheckpointError("this interpreter has stopped; there is no state to take")
            return memory_image.capture(store, memory)

    def run_cell(
        self, code: str, limits: CellLimits, control: CellControl | None = None
    ) -> CellRun:
        """Run ``code`` as one turn under ``limits``; never raises for guest failures."""
        with self._turn_lock:
            if not self._alive:
                raise RuntimeError("this guest has stopped; boot a new one")
            # One copy into the guest, no call back out to fetch the cell. The first byte asks
            # for line-buffered stdout when someone watches the output as it comes.
            streamed = b"1" if control is not None and control.on_output is not None else b"0"
            source = streamed + self._settings + code.encode("utf-8", errors="surrogatepass")
            self._status = None
            self._display = None
            self._tools = limits.tools
            guest_store = self._guest_store
            guest_store.begin_cell(limits, control)
            store, memory = guest_store.store, guest_store.memory
            assert store is not None and memory is not None
            try:
                pointer = self._alloc(store, len(source)) & 0xFFFFFFFF
                if pointer == 0:  # no room even for the cell: the interpreter is full
                    return self._finish(-1)
                if not guest_memory.write(store, memory, source, pointer):
                    return self._finish(-1)
                returned = self._turn(store, pointer, len(source))
            except Exception as error:  # traps, exits: the interpreter is not trusted again
                self._retire()
                return guest_store.stopped_by(error)
            return self._finish(returned)

    def close(self) -> None:
        """Hand the interpreter to the runtime's recycler, or free it now, or once the turn
        in progress ends.

        Only the exit clean-up can close a guest whose turn is still running (its sandbox's
        lock keeps everyone else out); it does not wait out a cell's whole deadline.
        """
        recycler = self._program.recycler
        if self._alive and recycler is not None and self._turn_lock.acquire(blocking=False):
            try:
                self._alive = False
                if recycler.give_back(self, self._module):
                    return
            finally:
                self._turn_lock.release()
        self._alive = False
        self._guest_store.wake()
        if self._turn_lock.acquire(timeout=_CLOSE_WAIT_SECONDS):
            try:
                self._guest_store.free()
            finally:
                self._turn_lock.release()

    # --- recycling (recycler.py) ---------------------------------------------------------

    def reset(self, pristine: tuple[int, int], copy_limit_bytes: int) -> bool:
        """Memory back to the snapshot's; between turns, with the turn lock held."""
        store, memory = self._guest_store.store, self._guest_store.memory
        if store is None or memory is None:
            return False
        if not memory_image.reset_to_pristine(store, memory, pristine, copy_limit_bytes):
            return False
        self._guest_store.release_files()
        return True

    def rebind(self, spec: BootSpec, workspace: Path) -> bool:
        """Serve a new sandbox as a new instance would: its WASI context, limits, settings."""
        if spec.memory_bytes < self._guest_store.memory_bytes():
            return False  # a new instance would not start under this limit either
        with self._turn_lock:
            self.spec = spec
            self._settings = _settings(spec)
            self._status, self._display, self._tools = None, None, None
            self._guest_store.rebind(
                memory_bytes=spec.memory_bytes,
                argv=["python"],
                env=_environment(spec, self._program),
                filesystem=_filesystem(spec, workspace),
            )
            store = self._guest_store.store
            assert store is not None
            try:
                self._reset_preopens(store)
                self._seed_generators()
            except Exception:  # the recycler frees it; the caller boots a new one
                return False
            self._alive = True
        return True

    def _seed_generators(self) -> None:
        """Give each of the snapshot's marked generators (``random``, ``numpy.random``) a
        whole state from the OS's entropy: a new interpreter must not draw what its
        neighbours draw, and seeding in the guest cost its first turn ~850 pages."""
        store, memory = self._guest_store.store, self._guest_store.memory
        assert store is not None and memory is not None
        for address in self._generator_states:
            if not guest_memory.write(
                store, memory, os.urandom(MT19937_STATE_BYTES), address & 0xFFFFFFFF
            ):
                raise GuestStartupError(f"a generator state at {address} is outside the memory")

    def free(self) -> None:
        """Free the instance (one the recycler no longer wants)."""
        self._alive = False
        with self._turn_lock:
            self._guest_store.free()

    def join(self, timeout: float) -> None:
        """close() frees everything before it returns."""

    # --- helpers -------------------------------------------------------------------------

    def _finish(self, returned: int) -> CellRun:
        guest_store = self._guest_store
        status = self._status or 0  # the driver reports only statuses other than 0
        if returned != 0:
            # The driver could not take or finish the cell (its own code failed, most likely
            # for want of memory): replace the interpreter, and keep its frames from the model.
            self._retire()
            full = near_memory_limit(guest_store.memory_bytes(), guest_store.memory_bytes_limit)
            run = guest_store.report(
                -1,
                trap=TrapReason.MEMORY_LIMIT if full else TrapReason.GUEST_CRASH,
                trap_message=(
                    "the interpreter's memory is full of the session's data, so it could not "
                    "run the cell; it was replaced by a fresh one"
                    if full
                    else "the interpreter failed outside the cell and was replaced"
                ),
                guest_alive=False,
            )
            run.stderr = OutputCapture(0)  # the driver's own traceback is nothing to act on
            return run
        out_of_memory = bool(status & STATUS_MEMORY_ERROR)
        run = guest_store.report(
            status & 0xFF,
            trap=TrapReason.MEMORY_LIMIT if out_of_memory else None,
            trap_message="the guest ran out of memory (MemoryError)" if out_of_memory else "",
        )
        run.display_markdown = self._display
        return run

    def _retire(self) -> None:
        self._alive = False

    def _door(
        self,
        caller: wasmtime.Caller,
        pointer: int,
        length: int,
        answer_pointer: int,
        answer_length_pointer: int,
    ) -> int:
        """host.call: answer the driver's requests. Returns 0, or -1/-2; never raises.

        An answer with data goes into a buffer the door gets from the guest's ``host_alloc``,
        called re-entrantly; the guest's ``_host.call`` copies it into bytes and frees it.
        """
        memory = self._guest_store.memory
        if memory is None:
            return _DOOR_FAULT
        size = memory.data_len(caller)
        pointer, length = pointer & 0xFFFFFFFF, length & 0xFFFFFFFF
        answer_pointer, answer_length_pointer = (
            answer_pointer & 0xFFFFFFFF,
            answer_length_pointer & 0xFFFFFFFF,
        )
        if pointer + length > size or max(answer_pointer, answer_length_pointer) + 4 > size:
            return _DOOR_FAULT
        head = guest_memory.read(caller, memory, pointer, min(length, _HEAD_BYTES)) or b""
        answer = b""
        if head.startswith(REQUEST_TOOL):
            answer = self._tool_answer(caller, memory, pointer, length)
        elif length > len(REPORT_DISPLAY) + MAX_DISPLAY_BYTES:
            return _DOOR_FAULT
        elif head.startswith(REPORT_DISPLAY):
            request = guest_memory.read(caller, memory, pointer, length) or b""
            self._display = request[len(REPORT_DISPLAY) :].decode("utf-8", errors="replace")
        elif head.startswith(REPORT_STATUS):
            try:
                request = guest_memory.read(caller, memory, pointer, length) or b""
                self._status = int(request[len(REPORT_STATUS) :])
            except ValueError:
                return _DOOR_FAULT
        else:
            return _DOOR_NO_HOST
        return self._give(caller, memory, answer, answer_pointer, answer_length_pointer)

    def _tool_answer(
        self, caller: wasmtime.Caller, memory: wasmtime.Memory, pointer: int, length: int
    ) -> bytes:
        tools = self._tools
        if tools is None:
            return failure("unknown_tool", "this sandbox was given no host tools")
        body = length - len(REQUEST_TOOL)
        refused = tools.admit(body)
        if refused is not None:
            return refused.payload
        start = pointer + len(REQUEST_TOOL)
        reply = tools.handle(
            guest_memory.read(caller, memory, start, body) or b"", self._guest_store.deadline
        )
        if reply.stop:
            self._guest_store.interrupt()  # the guest traps as a timeout when the door returns
            return b""
        return reply.payload

    def _give(
        self,
        caller: wasmtime.Caller,
        memory: wasmtime.Memory,
        answer: bytes,
        answer_pointer: int,
        answer_length_pointer: int,
    ) -> int:
        """Write ``answer`` where the guest's _host.call looks for it (empty: no buffer)."""
        buffer = 0
        if answer:
            try:
                buffer = self._alloc(caller, len(answer)) & 0xFFFFFFFF
            except Exception:  # a trap inside host_alloc (the deadline): the guest stops next
                return _DOOR_FAULT
            if buffer == 0 or not guest_memory.write(caller, memory, answer, buffer):
                return _DOOR_FAULT
        if not guest_memory.write(
            caller, memory, _U32.pack(buffer), answer_pointer
        ) or not guest_memory.write(caller, memory, _U32.pack(len(answer)), answer_length_pointer):
            return _DOOR_FAULT
        return 0


def _settings(spec: BootSpec) -> bytes:
    """The session's settings, which the driver applies at its first cell: the workspace and
    the globals directory, NUL-separated on one line (guest paths hold no control characters;
    a JSON line cost the first turn the json module's pages)."""
    return f"{spec.workspace_guest_path}\0{spec.globals_dir or ''}\n".encode()


def _environment(spec: BootSpec, program: ReactorProgram) -> dict[str, str]:
    return {**dict(spec.env), **program.wasi_env()}


def _filesystem(spec: BootSpec, workspace: Path) -> GuestFilesystem:
    return GuestFilesystem(
        workspace=workspace,
        workspace_guest_path=spec.workspace_guest_path,
        read_only_mounts=spec.read_only_mounts,
    )
