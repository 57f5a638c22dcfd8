"""The workspace disk quota: a wasm shim in front of WASI's writes.

wasmtime writes guest files straight to the host, so the quota is enforced before the write:
a tiny wasm module that shares the guest's memory exports ``fd_write``, ``fd_pwrite`` and
``fd_allocate`` in place of WASI's. For stdout/stderr it forwards at once; for files it first
asks the host (``charge``) whether the bytes fit in what is left of the call's budget, and
returns ``ENOSPC`` inside the guest when they do not, so the guest sees "no space left on
device" and the host disk never fills. Bytes are charged as written, so rewriting a file within
one call counts twice; each call starts from the workspace's measured size.
"""

from __future__ import annotations

import struct
from functools import cache

import wasmtime

from sandbox.host.memory_import import MEMORY_MODULE, MEMORY_NAME

ERRNO_NOSPC = 51
_IOVEC = struct.Struct("<II")

_SHIM_WAT = f"""
(module
  (import "{MEMORY_MODULE}" "{MEMORY_NAME}" (memory 0))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite"
    (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_allocate"
    (func $fd_allocate (param i32 i64 i64) (result i32)))
  (import "sandbox" "charge_iovecs" (func $charge_iovecs (param i32 i32 i32) (result i32)))
  (import "sandbox" "charge_bytes" (func $charge_bytes (param i64) (result i32)))
  (export "memory" (memory 0))
  (func (export "fd_write") (param $fd i32) (param $iovs i32) (param $count i32)
      (param $written i32) (result i32)
    (local $errno i32)
    (if (i32.gt_u (local.get $fd) (i32.const 2))
      (then
        (local.set $errno (call $charge_iovecs (local.get $fd) (local.get $iovs) (local.get $count)))
        (if (local.get $errno) (then (return (local.get $errno))))))
    (call $fd_write (local.get $fd) (local.get $iovs) (local.get $count) (local.get $written)))
  (func (export "fd_pwrite") (param $fd i32) (param $iovs i32) (param $count i32)
      (param $offset i64) (param $written i32) (result i32)
    (local $errno i32)
    (local.set $errno (call $charge_iovecs (local.get $fd) (local.get $iovs) (local.get $count)))
    (if (local.get $errno) (then (return (local.get $errno))))
    (call $fd_pwrite (local.get $fd) (local.get $iovs) (local.get $count) (local.get $offset)
      (local.get $written)))
  (func (export "fd_allocate") (param $fd i32) (param $offset i64) (param $length i64)
      (result i32)
    (local $errno i32)
    (local.set $errno (call $charge_bytes (local.get $length)))
    (if (local.get $errno) (then (return (local.get $errno))))
    (call $fd_allocate (local.get $fd) (local.get $offset) (local.get $length)))
)
"""

WRAPPED_WASI_CALLS = ("fd_write", "fd_pwrite", "fd_allocate")


@cache
def shim_module(engine: wasmtime.Engine) -> wasmtime.Module:
    return wasmtime.Module(engine, _SHIM_WAT)


class DiskBudget:
    """Bytes a guest may still write to files during the current call."""

    def __init__(self) -> None:
        self.remaining = 0

    def charge(self, size: int) -> int:
        """A WASI errno: 0 when ``size`` more bytes fit, ENOSPC when they do not."""
        if size > self.remaining:
            return ERRNO_NOSPC
        self.remaining -= size
        return 0

    def charge_iovecs(self, caller: wasmtime.Caller, _fd: int, iovs: int, count: int) -> int:
        memory = caller[MEMORY_NAME]
        assert isinstance(memory, wasmtime.Memory)
        raw = memory.read(caller, iovs, iovs + count * _IOVEC.size)
        total = sum(length for _pointer, length in _IOVEC.iter_unpack(raw))
        return self.charge(total)

    def charge_bytes(self, length: int) -> int:
        return self.charge(length)


def define_quota_imports(
    linker: wasmtime.Linker,
    store: wasmtime.Store,
    engine: wasmtime.Engine,
    memory: wasmtime.Memory,
    budget: DiskBudget,
) -> None:
    """Put the shared memory and the quota-checking writes into ``linker`` for the guest."""
    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
    linker.define(store, MEMORY_MODULE, MEMORY_NAME, memory)
    linker.define_func(
        "sandbox",
        "charge_iovecs",
        wasmtime.FuncType([i32, i32, i32], [i32]),
        budget.charge_iovecs,
        access_caller=True,
    )
    linker.define_func(
        "sandbox", "charge_bytes", wasmtime.FuncType([i64], [i32]), budget.charge_bytes
    )
    shim = linker.instantiate(store, shim_module(engine))
    for name in WRAPPED_WASI_CALLS:
        linker.define(store, "wasi_snapshot_preview1", name, shim.exports(store)[name])
