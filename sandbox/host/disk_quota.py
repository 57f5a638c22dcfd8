"""The workspace disk quota: WASI's file writes, checked before they happen.

wasmtime writes guest files straight to the host, so the check must come first. We shadow
``fd_write``, ``fd_pwrite`` and ``fd_allocate`` with host functions that charge the bytes to
the call's budget and answer ``ENOSPC`` when they do not fit (the guest sees "No space left on
device" and the host disk never fills), then forward to wasmtime's own implementation.

Forwarding is the subtle part: wasmtime's WASI functions find guest memory through the
*calling instance's* ``memory`` export, so a host function cannot call them directly. A tiny wasm
forwarder instantiated after the guest imports the guest's memory, re-exports it as
``memory`` and calls the WASI functions; the host functions call the forwarder. The guest keeps
defining its own memory, so wasmtime still maps its data copy-on-write from the compiled image.

Bytes are charged as written, so rewriting a file within one call counts twice; each call
starts from the workspace's measured size. stdout and stderr (fds 1 and 2) are not charged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import cache

import wasmtime

ERRNO_NOSPC = 51
_IOVEC = struct.Struct("<II")
_FIRST_FILE_FD = 3

_FORWARDER_WAT = """
(module
  (import "guest" "memory" (memory 0))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite"
    (func $pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_allocate" (func $allocate (param i32 i64 i64) (result i32)))
  (export "memory" (memory 0))
  (func (export "fd_write") (param i32 i32 i32 i32) (result i32)
    (call $write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fd_pwrite") (param i32 i32 i32 i64 i32) (result i32)
    (call $pwrite (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "fd_allocate") (param i32 i64 i64) (result i32)
    (call $allocate (local.get 0) (local.get 1) (local.get 2)))
)
"""


@cache
def _forwarder_module(engine: wasmtime.Engine) -> wasmtime.Module:
    return wasmtime.Module(engine, _FORWARDER_WAT)


class DiskQuota:
    """The quota-checked WASI writes of one guest, and the bytes it may still write this call."""

    def __init__(self) -> None:
        self.remaining = 0
        self._forward: dict[str, wasmtime.Func] = {}

    def define_imports(self, linker: wasmtime.Linker) -> None:
        """Shadow WASI's writes in ``linker`` (which already has WASI) with checked ones."""
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        signatures: dict[str, tuple[list[wasmtime.ValType], Callable[..., int]]] = {
            "fd_write": ([i32, i32, i32, i32], self._fd_write),
            "fd_pwrite": ([i32, i32, i32, i64, i32], self._fd_pwrite),
            "fd_allocate": ([i32, i64, i64], self._fd_allocate),
        }
        for name, (params, function) in signatures.items():
            linker.define_func(
                "wasi_snapshot_preview1",
                name,
                wasmtime.FuncType(params, [i32]),
                function,
                access_caller=True,
            )

    def attach(
        self, engine: wasmtime.Engine, store: wasmtime.Store, guest_memory: wasmtime.Memory
    ) -> None:
        """Instantiate the forwarder on the guest's memory; call before the guest runs."""
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        linker.define(store, "guest", "memory", guest_memory)
        exports = linker.instantiate(store, _forwarder_module(engine)).exports(store)
        for name in ("fd_write", "fd_pwrite", "fd_allocate"):
            function = exports[name]
            assert isinstance(function, wasmtime.Func)
            self._forward[name] = function

    def _charge(self, size: int) -> int:
        if size > self.remaining:
            return ERRNO_NOSPC
        self.remaining -= size
        return 0

    def _charge_iovecs(self, caller: wasmtime.Caller, iovs: int, count: int) -> int:
        memory = caller["memory"]
        assert isinstance(memory, wasmtime.Memory)
        raw = memory.read(caller, iovs, iovs + count * _IOVEC.size)
        return self._charge(sum(length for _pointer, length in _IOVEC.iter_unpack(raw)))

    def _fd_write(self, caller: wasmtime.Caller, fd: int, iovs: int, count: int, out: int) -> int:
        if fd >= _FIRST_FILE_FD and (errno := self._charge_iovecs(caller, iovs, count)):
            return errno
        return int(self._forward["fd_write"](caller, fd, iovs, count, out))

    def _fd_pwrite(
        self, caller: wasmtime.Caller, fd: int, iovs: int, count: int, offset: int, out: int
    ) -> int:
        if errno := self._charge_iovecs(caller, iovs, count):
            return errno
        return int(self._forward["fd_pwrite"](caller, fd, iovs, count, offset, out))

    def _fd_allocate(self, caller: wasmtime.Caller, fd: int, offset: int, length: int) -> int:
        if errno := self._charge(length):
            return errno
        return int(self._forward["fd_allocate"](caller, fd, offset, length))
