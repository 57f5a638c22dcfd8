"""Calling an ``(i32, ...) -> i32`` export (and using an i32 global) without wasmtime-py's
per-call introspection.

``wasmtime.Func.__call__`` asks the store for the function's type and converts every argument
through ``Val`` objects on each call: ~15 us of Python per call, which was a tenth of a Python
session call (each cell makes two). The type is checked once here, and a call fills a
prepared argument array and goes straight to the C API, handling a trap or a host function's
exception as wasmtime-py's own ``enter_wasm`` does, so they surface exactly as they do from
``Func.__call__``. It uses wasmtime-py's ``_ffi`` and ``_func`` modules, which are
internal: the wasmtime pin in pyproject keeps them fixed, and the test suite runs every
Python cell through this path.
"""

from __future__ import annotations

import ctypes

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._func import maybe_raise_last_exn


class I32Export:
    """One export of a live instance whose parameters and single result are all i32."""

    def __init__(self, store: wasmtime.Store, export: object) -> None:
        if not isinstance(export, wasmtime.Func):
            raise TypeError(f"expected an exported function, got {type(export).__name__}")
        signature = export.type(store)
        i32 = wasmtime.ValType.i32()
        if any(kind != i32 for kind in signature.params) or list(signature.results) != [i32]:
            raise TypeError(f"expected an (i32, ...) -> i32 export, got {signature}")
        self._function = ctypes.byref(export._func)
        self._arity = len(signature.params)
        self._arguments = (ffi.wasmtime_val_t * self._arity)()
        for argument in self._arguments:
            argument.kind = ffi.WASMTIME_I32
        self._result = (ffi.wasmtime_val_t * 1)()

    def __call__(self, store: wasmtime.Store | wasmtime.Caller, *arguments: int) -> int:
        """Call the export; raises wasmtime.Trap or WasmtimeError as Func.__call__ does."""
        if len(arguments) != self._arity:
            raise TypeError(f"expected {self._arity} arguments, got {len(arguments)}")
        for slot, value in zip(self._arguments, arguments, strict=True):
            slot.of.i32 = value
        # What wasmtime-py's enter_wasm() does, without a context manager's cost per call.
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        error = ffi.wasmtime_func_call(
            store._context(),
            self._function,
            self._arguments,
            self._arity,
            self._result,
            1,
            ctypes.byref(trap),
        )
        if error:
            maybe_raise_last_exn()
            raise wasmtime.WasmtimeError._from_ptr(error)
        if trap:
            stopped = wasmtime.Trap._from_ptr(trap)
            maybe_raise_last_exn()
            raise stopped
        return int(self._result[0].of.i32)


class I32Global:
    """A mutable i32 global of a live instance, read and set without ``Val`` objects."""

    def __init__(self, store: wasmtime.Store, exported: wasmtime.Global) -> None:
        kind = exported.type(store)
        if kind.content != wasmtime.ValType.i32() or not kind.mutable:
            raise TypeError(f"expected a mutable i32 global, got {kind}")
        self._global = ctypes.byref(exported._global)
        self._value = ffi.wasmtime_val_t()
        self._value.kind = ffi.WASMTIME_I32

    def get(self, store: wasmtime.Store | wasmtime.Caller) -> int:
        ffi.wasmtime_global_get(store._context(), self._global, ctypes.byref(self._value))
        return int(self._value.of.i32)

    def set(self, store: wasmtime.Store | wasmtime.Caller, value: int) -> None:
        self._value.kind = ffi.WASMTIME_I32
        self._value.of.i32 = value
        error = ffi.wasmtime_global_set(store._context(), self._global, ctypes.byref(self._value))
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
