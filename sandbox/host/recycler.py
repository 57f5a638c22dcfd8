"""Fresh reactor interpreters without a new instance: closed ones, reset to the snapshot.

Most of what a fresh Python sandbox cost was not the interpreter: a new Store, three
instantiations, and the page faults of its first turn, which copies every page it writes from
the snapshot (~3 us a page, ~370 pages for a hello). An instance whose sandbox closed already
has those pages; giving them their pristine bytes back is a copy from an instance of the same
module that never runs, and the next sandbox's first turn then writes without a fault.

What makes a reset instance indistinguishable from a new one:

- linear memory: every page the kernel reports written (``memory_image.reset_to_pristine``)
  gets the pristine bytes back, so a test can compare the two byte for byte; a memory that
  grew is never reused (it cannot shrink);
- globals: the only mutable one, the stack pointer, is back at its start between turns;
- WASI: a new context, built as for a new instance; the old one's descriptors close with it;
- the quota router: its descriptor table and counters (``DiskQuota.reset``);
- the host side: limits, output captures, the guest clock and the session's settings.

Only interpreters whose last turn ended normally come back. At most ``CAPACITY`` wait, each
holding the pages it wrote resident; one that wrote more than ``COPY_LIMIT_BYTES`` is freed
instead (copying would cost more than it saves), and so is everything once the process exits.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Protocol

import wasmtime

from sandbox.host.engine import shared_engine
from sandbox.host.guest import BOOT_LIMITS, BootSpec, exiting

CAPACITY = 2
COPY_LIMIT_BYTES = 8 << 20


class Recyclable(Protocol):
    """An interpreter that can be reset to its module's first state and handed on."""

    def reset(self, pristine: tuple[int, int], copy_limit_bytes: int) -> bool:
        """Reset memory to ``pristine`` (address, size); False if it cannot be."""

    def rebind(self, spec: BootSpec, workspace: Path) -> bool:
        """Serve a new sandbox: ``spec`` on ``workspace``; False if it cannot."""

    def free(self) -> None:
        """Free the instance for good."""


class _Pristine:
    """An instance of the snapshot module that never runs: the bytes a reset restores."""

    def __init__(self, module: wasmtime.Module) -> None:
        engine = shared_engine()
        self._store = wasmtime.Store(engine)
        self._store.set_wasi(wasmtime.WasiConfig())
        self._store.set_fuel(BOOT_LIMITS.fuel)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        for item in module.imports:
            kind = item.type
            if isinstance(kind, wasmtime.FuncType) and item.module != "wasi_snapshot_preview1":
                # Never called: nothing in this instance ever runs.
                linker.define_func(item.module, item.name or "", kind, _never_called)
        memory = linker.instantiate(self._store, module).exports(self._store)["memory"]
        assert isinstance(memory, wasmtime.Memory)
        self._memory = memory
        self.module = module
        self.span = (
            ctypes.addressof(memory.data_ptr(self._store).contents),
            int(memory.data_len(self._store)),
        )


def _never_called(*_arguments: object) -> int:
    return -1


class InterpreterRecycler:
    """The closed interpreters of one runtime waiting for their next sandbox."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[Recyclable] = []
        self._pristine: _Pristine | None = None

    def take(self, spec: BootSpec, workspace: Path) -> Recyclable | None:
        """A reset interpreter bound to ``spec`` and ``workspace``, or None to boot one."""
        while True:
            with self._lock:
                if not self._idle or exiting():
                    return None
                guest = self._idle.pop()
            if guest.rebind(spec, workspace):
                return guest
            guest.free()

    def give_back(self, guest: Recyclable, module: wasmtime.Module) -> bool:
        """Reset ``guest`` (an instance of ``module``) and keep it; False if it must be freed."""
        with self._lock:
            if len(self._idle) >= CAPACITY or exiting():
                return False
            if self._pristine is None or self._pristine.module is not module:
                self._pristine = _Pristine(module)
            pristine = self._pristine.span
        if not guest.reset(pristine, COPY_LIMIT_BYTES):
            return False
        with self._lock:
            if len(self._idle) >= CAPACITY or exiting():
                return False
            self._idle.append(guest)
        return True

    def clear(self) -> None:
        """Free every waiting interpreter (each holds the pages it wrote resident)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for guest in idle:
            guest.free()

    def __len__(self) -> int:
        return len(self._idle)
