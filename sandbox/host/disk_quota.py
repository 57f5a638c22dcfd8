"""The workspace disk quota: WASI's file writes, checked before they happen.

wasmtime writes guest files straight to the host, so the check must come first. The guest's
``fd_write``, ``fd_pwrite`` and ``fd_allocate`` imports are served by a small wasm *router*: for
files it first asks the host to charge the bytes to the call's budget and returns ``ENOSPC``
when they do not fit (the guest sees "No space left on device"; the host disk never fills);
stdout and stderr (fds 1, 2) pass straight through, with no host callback of their own.

Passing through is the subtle part: wasmtime's WASI functions find guest memory through the
*calling instance's* ``memory`` export. The guest's memory only exists once the guest is
instantiated, so after that a *forwarder* module is instantiated on it (it re-exports it as
``memory`` and calls the WASI functions) and put into the router's function table. The guest
keeps defining its own memory, so wasmtime still maps its data copy-on-write from the image.

Bytes are charged as written, so rewriting a file within one call counts twice; each call
starts from the workspace's measured size.
"""

from __future__ import annotations

import struct
from functools import cache

import wasmtime

ERRNO_NOSPC = 51
_IOVEC = struct.Struct("<II")
WRAPPED_WASI_CALLS = ("fd_write", "fd_pwrite", "fd_allocate")  # router table order

_ROUTER_WAT = """
(module
  (import "quota" "charge_iovecs" (func $charge_iovecs (param i32 i32) (result i32)))
  (import "quota" "charge_bytes" (func $charge_bytes (param i64) (result i32)))
  (type $write (func (param i32 i32 i32 i32) (result i32)))
  (type $pwrite (func (param i32 i32 i32 i64 i32) (result i32)))
  (type $allocate (func (param i32 i64 i64) (result i32)))
  (table (export "targets") 3 funcref)
  (func (export "fd_write") (param $fd i32) (param $iovs i32) (param $count i32)
      (param $out i32) (result i32)
    (local $errno i32)
    (if (i32.gt_u (local.get $fd) (i32.const 2))
      (then
        (local.set $errno (call $charge_iovecs (local.get $iovs) (local.get $count)))
        (if (local.get $errno) (then (return (local.get $errno))))))
    (call_indirect (type $write)
      (local.get $fd) (local.get $iovs) (local.get $count) (local.get $out) (i32.const 0)))
  (func (export "fd_pwrite") (param $fd i32) (param $iovs i32) (param $count i32)
      (param $offset i64) (param $out i32) (result i32)
    (local $errno i32)
    (local.set $errno (call $charge_iovecs (local.get $iovs) (local.get $count)))
    (if (local.get $errno) (then (return (local.get $errno))))
    (call_indirect (type $pwrite) (local.get $fd) (local.get $iovs) (local.get $count)
      (local.get $offset) (local.get $out) (i32.const 1)))
  (func (export "fd_allocate") (param $fd i32) (param $offset i64) (param $length i64)
      (result i32)
    (local $errno i32)
    (local.set $errno (call $charge_bytes (local.get $length)))
    (if (local.get $errno) (then (return (local.get $errno))))
    (call_indirect (type $allocate)
      (local.get $fd) (local.get $offset) (local.get $length) (i32.const 2)))
)
"""

_FORWARDER_WAT = """
(module
  (import "guest" "memory" (memory 0))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite"
    (func $pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_allocate" (func $allocate (param i32 i64 i64) (result i32)))
  (export "memory" (memory 0))
  ;; Wrappers, not re-exports: WASI must see this instance, which has the memory, as its caller.
  (func (export "fd_write") (param i32 i32 i32 i32) (result i32)
    (call $write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "fd_pwrite") (param i32 i32 i32 i64 i32) (result i32)
    (call $pwrite (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "fd_allocate") (param i32 i64 i64) (result i32)
    (call $allocate (local.get 0) (local.get 1) (local.get 2)))
)
"""


@cache
def _module(engine: wasmtime.Engine, wat: str) -> wasmtime.Module:
    return wasmtime.Module(engine, wat)


class DiskQuota:
    """One guest's quota-checked WASI writes, and the bytes it may still write this call."""

    def __init__(self) -> None:
        self.remaining = 0
        self._memory: wasmtime.Memory | None = None
        self._targets: wasmtime.Table | None = None

    def define_imports(
        self, engine: wasmtime.Engine, store: wasmtime.Store, linker: wasmtime.Linker
    ) -> None:
        """Route the guest's WASI writes in ``linker`` (which already has WASI) through the quota."""
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        quota = wasmtime.Linker(engine)
        quota.define_func(
            "quota",
            "charge_iovecs",
            wasmtime.FuncType([i32, i32], [i32]),
            self._charge_iovecs,
            access_caller=True,
        )
        quota.define_func("quota", "charge_bytes", wasmtime.FuncType([i64], [i32]), self._charge)
        router = quota.instantiate(store, _module(engine, _ROUTER_WAT)).exports(store)
        targets = router["targets"]
        assert isinstance(targets, wasmtime.Table)
        self._targets = targets
        for name in WRAPPED_WASI_CALLS:
            linker.define(store, "wasi_snapshot_preview1", name, router[name])

    def attach(
        self, engine: wasmtime.Engine, store: wasmtime.Store, guest_memory: wasmtime.Memory
    ) -> None:
        """Point the router at WASI through a forwarder on the guest's memory; before it runs."""
        assert self._targets is not None, "define_imports() comes first"
        self._memory = guest_memory
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        linker.define(store, "guest", "memory", guest_memory)
        forwarder = linker.instantiate(store, _module(engine, _FORWARDER_WAT)).exports(store)
        for index, name in enumerate(WRAPPED_WASI_CALLS):
            function = forwarder[name]
            assert isinstance(function, wasmtime.Func)
            self._targets.set(store, index, function)

    def _charge(self, size: int) -> int:
        """0 when ``size`` more bytes fit in this call's budget, else ENOSPC."""
        if size > self.remaining:
            return ERRNO_NOSPC
        self.remaining -= size
        return 0

    def _charge_iovecs(self, caller: wasmtime.Caller, iovs: int, count: int) -> int:
        assert self._memory is not None
        raw = self._memory.read(caller, iovs, iovs + count * _IOVEC.size)
        return self._charge(sum(length for _pointer, length in _IOVEC.iter_unpack(raw)))
