"""The workspace disk quota: every WASI call that can take host disk, checked before it happens.

wasmtime writes guest files straight to the host, so the check must come first. The guest's
imports that write data (``fd_write``, ``fd_pwrite``, ``fd_allocate``,
``fd_filestat_set_size``) or make directory entries (``path_open`` with ``O_CREAT``,
``path_create_directory``, ``path_symlink``, ``path_link``) are served by a small wasm
*router*. It asks the host to charge the call to this call's budget of bytes and entries and
returns ``ENOSPC`` when it does not fit, so the guest sees "No space left on device" and the
host disk never fills. Every entry costs ``INODE_BYTES`` on top of its data, so empty files,
directories and links are not free, and their number is capped too.

Descriptors are charged by what they are, never by their number: what the guest writes to
stdout and stderr (fds 1, 2) goes to the host's output capture uncharged (one host call on the
guest's thread: wasmtime's own WASI would pass each write through a worker thread), and the
router refuses to close or renumber
fds 0-3 (stdio and the workspace's preopen), so no file can ever be opened under those numbers. The router also tells the host
which descriptors the guest holds open inside the workspace: a file deleted while still open
keeps its disk, so while any is open, deletions are not credited to the next call's budget.

Passing through is the subtle part: wasmtime's WASI functions find guest memory through the
*calling instance's* ``memory`` export. The guest's memory only exists once the guest is
instantiated, so after that a *forwarder* module is instantiated on it (it re-exports it as
``memory`` and calls the WASI functions) and put into the router's function table. The guest
keeps defining its own memory, so wasmtime still maps its data copy-on-write from the image.

Host callbacks here return an errno and never raise (docs/architecture.md): a bad pointer from
the guest gets ``EFAULT``.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from functools import cache
from posixpath import normpath
from typing import Any

import wasmtime

from sandbox.host import guest_memory
from sandbox.host.export_call import I32Global
from sandbox.host.guest_tree import INODE_BYTES
from sandbox.host.wasi import WORKSPACE_PREOPEN_FD

ERRNO_FAULT = 21
ERRNO_MFILE = 33
ERRNO_NOTSUP = 58
ERRNO_NOSPC = 51
ERRNO_PERM = 63
# Descriptors one guest may hold open at once (each is a host descriptor of this process).
MAX_OPEN_DESCRIPTORS = 512
_IOVEC = struct.Struct("<II")

# (name, parameter types) of each WASI call the router serves, in its table's order.
_WRAPPED = (
    ("fd_write", "i32 i32 i32 i32"),
    ("fd_pwrite", "i32 i32 i32 i64 i32"),
    ("fd_allocate", "i32 i64 i64"),
    ("fd_filestat_set_size", "i32 i64"),
    ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32"),
    ("path_create_directory", "i32 i32 i32"),
    ("path_symlink", "i32 i32 i32 i32 i32"),
    ("path_link", "i32 i32 i32 i32 i32 i32 i32"),
    ("fd_close", "i32"),
    ("fd_renumber", "i32 i32"),
    # Not charged, only noted: they change the workspace without adding to it.
    ("path_unlink_file", "i32 i32 i32"),
    ("path_remove_directory", "i32 i32 i32"),
    ("path_rename", "i32 i32 i32 i32 i32 i32"),
    ("path_filestat_set_times", "i32 i32 i32 i32 i64 i64 i32"),
    ("fd_filestat_set_times", "i32 i64 i64 i32"),
)
_NOTED = ("path_unlink_file", "path_remove_directory", "path_rename")
_NOTED_TIMES = ("path_filestat_set_times", "fd_filestat_set_times")
WRAPPED_WASI_CALLS = tuple(name for name, _params in _WRAPPED)


_FD_BITMAP_LIMIT = 8 * 65536  # one wasm page of bits: descriptors the router can track
_LOAD_I32_SLOT = len(_WRAPPED)  # the forwarder's memory read, after the wrapped calls


def _forward(name: str) -> str:
    """The router's call through its table to wasmtime's own ``name``."""
    arity = len(dict(_WRAPPED)[name].split())
    arguments = " ".join(f"(local.get {i})" for i in range(arity))
    return (
        f"(call_indirect (type ${name}) {arguments} (i32.const {WRAPPED_WASI_CALLS.index(name)}))"
    )


_NOTE_CHANGE = "(global.set $changed (i32.const 1))"


def _noted(name: str) -> str:
    """A call that passes through, noting that the workspace may have changed."""
    return f"""
  (func (export "{name}") (param {dict(_WRAPPED)[name]}) (result i32)
    {_NOTE_CHANGE}
    {_forward(name)})"""


def _charged_entry(name: str, directory: int, extra: str, check: str = "") -> str:
    """A path call that makes one entry in directory fd ``directory`` (parameter index).

    Entries made in the workspace are charged first and refunded if the call fails; elsewhere
    WASI refuses to create anything, so nothing is charged.
    """
    return f"""
  (func (export "{name}") (param {dict(_WRAPPED)[name]}) (result i32)
    (local $errno i32)
    (local $charged i32)
    {check}
    {_NOTE_CHANGE}
    (if (call $tracked (local.get {directory}))
      (then
        (local.set $errno (call $charge_entry {extra}))
        (if (local.get $errno) (then (return (local.get $errno))))
        (local.set $charged (i32.const 1))))
    (local.set $errno {_forward(name)})
    (if (i32.and (local.get $charged) (i32.ne (local.get $errno) (i32.const 0)))
      (then (call $refund_entry {extra})))
    (local.get $errno))"""


# Descriptors opened through the workspace are tracked in a bitmap in the router's own memory
# (fd 3, the workspace preopen, from the start), with $open_files counting those besides it,
# so opening and closing files costs no host callback.
_FD_TRACKING_WAT = f"""
  (memory (export "tracked") 1)
  (data (i32.const 0) "\\{1 << WORKSPACE_PREOPEN_FD:02x}")
  (global $open_files (export "open_files") (mut i32) (i32.const 0))
  (global $descriptors (export "descriptors") (mut i32) (i32.const 0))
  (global $first_free (export "first_free") (mut i32) (i32.const {WORKSPACE_PREOPEN_FD + 1}))
  ;; Set by every call that may change a file or directory; cleared by the host at each call.
  (global $changed (export "changed") (mut i32) (i32.const 0))
  (func $bit (param $fd i32) (result i32)
    (i32.shl (i32.const 1) (i32.and (local.get $fd) (i32.const 7))))
  (func $tracked (param $fd i32) (result i32)
    (if (result i32) (i32.ge_u (local.get $fd) (i32.const {_FD_BITMAP_LIMIT}))
      (then (i32.const 0))
      (else (i32.ne (i32.const 0)
              (i32.and (i32.load8_u (i32.shr_u (local.get $fd) (i32.const 3)))
                       (call $bit (local.get $fd)))))))
  (func $track (param $fd i32)
    (global.set $open_files (i32.add (global.get $open_files) (i32.const 1)))
    ;; Beyond the bitmap a descriptor is counted forever: the budget then never grows back.
    (if (i32.lt_u (local.get $fd) (i32.const {_FD_BITMAP_LIMIT}))
      (then
        (if (call $tracked (local.get $fd))
          (then (global.set $open_files (i32.sub (global.get $open_files) (i32.const 1))))
          (else (i32.store8 (i32.shr_u (local.get $fd) (i32.const 3))
                  (i32.or (i32.load8_u (i32.shr_u (local.get $fd) (i32.const 3)))
                          (call $bit (local.get $fd)))))))))
  (func $untrack (param $fd i32)
    (if (call $tracked (local.get $fd))
      (then
        (i32.store8 (i32.shr_u (local.get $fd) (i32.const 3))
          (i32.xor (i32.load8_u (i32.shr_u (local.get $fd) (i32.const 3)))
                   (call $bit (local.get $fd))))
        (global.set $open_files (i32.sub (global.get $open_files) (i32.const 1))))))
"""

_CHECK_SYMLINK_TARGET = """
    (local.set $errno (call $check_symlink (local.get 0) (local.get 1)))
    (if (local.get $errno) (then (return (local.get $errno))))"""
# stdio and the preopens stay open for the guest's whole life; $first_free is set by the host.
_PROTECTED_FD = "(i32.lt_u (local.get 0) (global.get $first_free))"

_ROUTER_WAT = f"""
(module
  (import "quota" "charge_iovecs" (func $charge_iovecs (param i32 i32) (result i32)))
  (import "quota" "charge_bytes" (func $charge_bytes (param i64) (result i32)))
  (import "quota" "charge_entry" (func $charge_entry (param i32) (result i32)))
  (import "quota" "refund_entry" (func $refund_entry (param i32)))
  (import "quota" "check_symlink" (func $check_symlink (param i32 i32) (result i32)))
  (import "quota" "output" (func $output (param i32 i32 i32 i32) (result i32)))
  {" ".join(f"(type ${name} (func (param {params}) (result i32)))" for name, params in _WRAPPED)}
  (type $load_i32 (func (param i32) (result i32)))
  (table (export "targets") {len(_WRAPPED) + 1} funcref)
  {_FD_TRACKING_WAT}
  (func (export "fd_write") (param i32 i32 i32 i32) (result i32)
    (local $errno i32)
    (if (i32.or (i32.eq (local.get 0) (i32.const 1)) (i32.eq (local.get 0) (i32.const 2)))
      (then
        (return (call $output (local.get 0) (local.get 1) (local.get 2) (local.get 3)))))
    (if (i32.gt_u (local.get 0) (i32.const 2))
      (then
        (local.set $errno (call $charge_iovecs (local.get 1) (local.get 2)))
        (if (local.get $errno) (then (return (local.get $errno))))))
    {_NOTE_CHANGE}
    {_forward("fd_write")})
  (func (export "fd_pwrite") (param i32 i32 i32 i64 i32) (result i32)
    (local $errno i32)
    (local.set $errno (call $charge_iovecs (local.get 1) (local.get 2)))
    (if (local.get $errno) (then (return (local.get $errno))))
    {_NOTE_CHANGE}
    {_forward("fd_pwrite")})
  (func (export "fd_allocate") (param i32 i64 i64) (result i32)
    (local $errno i32)
    (local.set $errno (call $charge_bytes (local.get 2)))
    (if (local.get $errno) (then (return (local.get $errno))))
    {_NOTE_CHANGE}
    {_forward("fd_allocate")})
  ;; Charged at the new size: shrinking costs nothing, growing a file costs what it may fill.
  (func (export "fd_filestat_set_size") (param i32 i64) (result i32)
    (local $errno i32)
    {_NOTE_CHANGE}
    (local.set $errno (call $charge_bytes (local.get 1)))
    (if (local.get $errno) (then (return (local.get $errno))))
    {_forward("fd_filestat_set_size")})
  ;; path_open makes an entry only with O_CREAT (oflags bit 0); a descriptor it opens through
  ;; the workspace is tracked.
  (func (export "path_open") (param {dict(_WRAPPED)["path_open"]}) (result i32)
    (local $errno i32)
    (local $charged i32)
    ;; Every guest descriptor is a host descriptor of this process: keep the guest's few.
    (if (i32.ge_u (global.get $descriptors) (i32.const {MAX_OPEN_DESCRIPTORS}))
      (then (return (i32.const {ERRNO_MFILE}))))
    ;; O_CREAT or O_TRUNC (oflags bits 0 and 3) may change the workspace.
    (if (i32.and (local.get 4) (i32.const 9)) (then {_NOTE_CHANGE}))
    (if (i32.and (i32.and (local.get 4) (i32.const 1)) (call $tracked (local.get 0)))
      (then
        (local.set $errno (call $charge_entry (i32.const 0)))
        (if (local.get $errno) (then (return (local.get $errno))))
        (local.set $charged (i32.const 1))))
    (local.set $errno {_forward("path_open")})
    (if (local.get $errno)
      (then (if (local.get $charged) (then (call $refund_entry (i32.const 0)))))
      (else
        (global.set $descriptors (i32.add (global.get $descriptors) (i32.const 1)))
        (if (call $tracked (local.get 0))
          (then (call $track
            (call_indirect (type $load_i32) (local.get 8) (i32.const {_LOAD_I32_SLOT})))))))
    (local.get $errno))
  {_charged_entry("path_create_directory", 0, "(i32.const 0)")}
  {_charged_entry("path_symlink", 2, "(local.get 1)", check=_CHECK_SYMLINK_TARGET)}
  {_charged_entry("path_link", 4, "(i32.const 0)")}
  (func (export "fd_close") (param i32) (result i32)
    (local $errno i32)
    (if {_PROTECTED_FD} (then (return (i32.const {ERRNO_PERM}))))
    (local.set $errno {_forward("fd_close")})
    (if (i32.eqz (local.get $errno))
      (then
        (call $untrack (local.get 0))
        (global.set $descriptors (i32.sub (global.get $descriptors) (i32.const 1)))))
    (local.get $errno))
  ;; Renumbering would let a file take a protected number; wasi-libc only needs it for dup2.
  (func (export "fd_renumber") (param i32 i32) (result i32)
    (i32.const {ERRNO_NOTSUP}))
  {" ".join(_noted(name) for name in (*_NOTED, *_NOTED_TIMES))}
)
"""

_FORWARDER_IMPORTS = " ".join(
    f'(import "wasi_snapshot_preview1" "{name}" (func ${name} (param {params}) (result i32)))'
    for name, params in _WRAPPED
)
_FORWARDER_EXPORTS = " ".join(
    f'(func (export "{name}") (param {params}) (result i32) (call ${name} '
    + " ".join(f"(local.get {i})" for i in range(len(params.split())))
    + "))"
    for name, params in _WRAPPED
)
_FORWARDER_WAT = f"""
(module
  (import "guest" "memory" (memory 0))
  {_FORWARDER_IMPORTS}
  (export "memory" (memory 0))
  ;; Wrappers, not re-exports: WASI must see this instance, which has the memory, as its caller.
  {_FORWARDER_EXPORTS}
  ;; The router reads the descriptor path_open wrote through this (it has no guest memory).
  (func (export "load_i32") (param i32) (result i32) (i32.load (local.get 0)))
)
"""


@cache
def _module(engine: wasmtime.Engine, wat: str) -> wasmtime.Module:
    return wasmtime.Module(engine, wat)


def symlink_target_problem(target: str) -> str | None:
    """Why a guest may not create a link to ``target``, or None.

    Links may only point within their own directory tree: an absolute or climbing target can
    never be followed by the guest, and would only be a trap for host code.
    """
    if target.startswith("/"):
        return "absolute"
    if ".." in normpath(target).split("/") or ".." in target.split("/"):
        return "climbs with '..'"
    return None


class DiskQuota:
    """One guest's checked WASI calls, and the bytes and entries it may still add this call."""

    def __init__(self, on_output: Callable[[int, bytes], object]) -> None:
        """``on_output(fd, data)`` takes what the guest writes to stdout (1) and stderr (2)."""
        self._on_output = on_output
        self._bytes_left = 0
        self._entries_left = 0
        self._memory: wasmtime.Memory | None = None
        self._targets: wasmtime.Table | None = None
        self._open_files: I32Global | None = None
        self._first_free: wasmtime.Global | None = None
        self._descriptors: wasmtime.Global | None = None
        self._tracked: wasmtime.Memory | None = None
        self._changed: I32Global | None = None

    def begin_call(self, store: wasmtime.Store, bytes_budget: int, entries_budget: int) -> None:
        """Set this call's budget from the workspace as measured before it.

        While the guest holds workspace files open, a file it deleted may still take disk that
        no measurement sees, so the budget never grows back beyond what the last call left.
        """
        assert self._open_files is not None, "define_imports() comes first"
        if self._open_files.get(store):
            bytes_budget = min(bytes_budget, self._bytes_left)
            entries_budget = min(entries_budget, self._entries_left)
        self._bytes_left = bytes_budget
        self._entries_left = entries_budget
        assert self._changed is not None
        self._changed.set(store, 0)

    def workspace_changed(self, store: wasmtime.Store) -> bool:
        """Whether the guest made a call since begin_call() that may have changed a file or
        directory of the workspace (a scan can be skipped when it did not)."""
        return self._changed is None or self._changed.get(store) != 0

    def define_imports(
        self,
        engine: wasmtime.Engine,
        store: wasmtime.Store,
        linker: wasmtime.Linker,
        first_free_fd: int,
    ) -> None:
        """Route the guest's WASI calls in ``linker`` (which already has WASI) through the quota.

        Descriptors below ``first_free_fd`` (stdio and the preopens) can never be closed.
        """
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        quota = wasmtime.Linker(engine)
        callbacks: tuple[
            tuple[str, list[wasmtime.ValType], list[wasmtime.ValType], Any, bool], ...
        ] = (
            ("charge_iovecs", [i32, i32], [i32], self._charge_iovecs, True),
            ("charge_bytes", [i64], [i32], self._charge, False),
            ("charge_entry", [i32], [i32], self._charge_entry, False),
            ("refund_entry", [i32], [], self._refund_entry, False),
            ("check_symlink", [i32, i32], [i32], self._check_symlink, True),
            ("output", [i32, i32, i32, i32], [i32], self._output, True),
        )
        for name, params, results, function, access_caller in callbacks:
            quota.define_func(
                "quota",
                name,
                wasmtime.FuncType(params, results),
                function,
                access_caller=access_caller,
            )
        router = quota.instantiate(store, _module(engine, _ROUTER_WAT)).exports(store)
        targets, open_files, first_free = (
            router["targets"],
            router["open_files"],
            router["first_free"],
        )
        assert isinstance(targets, wasmtime.Table) and isinstance(open_files, wasmtime.Global)
        assert isinstance(first_free, wasmtime.Global)
        first_free.set_value(store, wasmtime.Val.i32(first_free_fd))
        self._targets, self._first_free = targets, first_free
        self._open_files = I32Global(store, open_files)
        tracked, descriptors, changed = router["tracked"], router["descriptors"], router["changed"]
        assert isinstance(tracked, wasmtime.Memory) and isinstance(descriptors, wasmtime.Global)
        assert isinstance(changed, wasmtime.Global)
        self._tracked, self._descriptors = tracked, descriptors
        self._changed = I32Global(store, changed)
        for name in WRAPPED_WASI_CALLS:
            linker.define(store, "wasi_snapshot_preview1", name, router[name])

    def reset(self, store: wasmtime.Store, first_free_fd: int) -> None:
        """Forget every descriptor but stdio and the preopens: the store has a new WASI
        context, made with ``first_free_fd`` as its first free descriptor."""
        assert self._tracked is not None and self._descriptors is not None
        assert self._open_files is not None and self._first_free is not None
        start = ctypes.addressof(self._tracked.data_ptr(store).contents)
        ctypes.memset(start, 0, self._tracked.data_len(store))
        ctypes.memset(start, 1 << WORKSPACE_PREOPEN_FD, 1)  # as the router's data segment
        self._open_files.set(store, 0)
        self._descriptors.set_value(store, wasmtime.Val.i32(0))
        self._first_free.set_value(store, wasmtime.Val.i32(first_free_fd))
        self._bytes_left = self._entries_left = 0

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
        for index, name in enumerate((*WRAPPED_WASI_CALLS, "load_i32")):
            function = forwarder[name]
            assert isinstance(function, wasmtime.Func)
            self._targets.set(store, index, function)

    # --- host callbacks (guest thread; return an errno, never raise) ------------------------

    def _charge(self, size: int) -> int:
        """0 when ``size`` more bytes fit in this call's budget, else ENOSPC."""
        if size > self._bytes_left:
            return ERRNO_NOSPC
        self._bytes_left -= size
        return 0

    def _charge_entry(self, extra_bytes: int) -> int:
        """Charge one new workspace entry and ``extra_bytes`` of its data (a link's target)."""
        size = INODE_BYTES + extra_bytes
        if self._entries_left < 1 or size > self._bytes_left:
            return ERRNO_NOSPC
        self._entries_left -= 1
        self._bytes_left -= size
        return 0

    def _refund_entry(self, extra_bytes: int) -> None:
        self._entries_left += 1
        self._bytes_left += INODE_BYTES + extra_bytes

    def _check_symlink(self, caller: wasmtime.Caller, target: int, length: int) -> int:
        raw = self._read(caller, target, length)
        if raw is None:
            return ERRNO_FAULT
        if symlink_target_problem(raw.decode("utf-8", errors="replace")) is not None:
            return ERRNO_PERM
        return 0

    def _charge_iovecs(self, caller: wasmtime.Caller, iovs: int, count: int) -> int:
        raw = self._read(caller, iovs, count * _IOVEC.size)
        if raw is None:
            return ERRNO_FAULT
        return self._charge(sum(length for _pointer, length in _IOVEC.iter_unpack(raw)))

    def _output(
        self, caller: wasmtime.Caller, fd: int, iovs: int, count: int, written_pointer: int
    ) -> int:
        """fd_write on stdout or stderr, served on the guest's own thread.

        wasmtime's WASI would hand each write to a worker thread that takes the GIL to run
        the output callback: ~0.1 ms for a cell's first print, where this costs a few us.
        """
        raw = self._read(caller, iovs, count * _IOVEC.size)
        if raw is None:
            return ERRNO_FAULT
        pieces = []
        for pointer, length in _IOVEC.iter_unpack(raw):
            piece = self._read(caller, pointer, length)
            if piece is None:
                return ERRNO_FAULT
            pieces.append(piece)
        data = b"".join(pieces)
        assert self._memory is not None
        if not 0 <= written_pointer <= self._memory.data_len(caller) - 4:
            return ERRNO_FAULT
        self._on_output(fd, data)
        guest_memory.write(caller, self._memory, len(data).to_bytes(4, "little"), written_pointer)
        return 0

    def _read(self, caller: wasmtime.Caller, pointer: int, length: int) -> bytes | None:
        """Guest memory at ``pointer``, or None when the range is not inside it."""
        assert self._memory is not None
        return guest_memory.read(caller, self._memory, pointer, length)
