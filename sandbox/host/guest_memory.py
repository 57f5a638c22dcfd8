"""Bounds-checked reads and writes of a guest's linear memory, without per-call ctypes types.

``wasmtime.Memory.read``/``write`` build a ctypes array type for each length they see and copy
through an intermediate bytearray: ~10 us for a few bytes, paid on every cell's source, every
print and every host call's answer. These copy straight between the memory's base address and
Python bytes. The address is asked for on each access, so a memory that moved when it grew is
still found.
"""

from __future__ import annotations

import ctypes

import wasmtime

Storelike = wasmtime.Store | wasmtime.Caller


def _base(store: Storelike, memory: wasmtime.Memory) -> int:
    return ctypes.addressof(memory.data_ptr(store).contents)


def read(store: Storelike, memory: wasmtime.Memory, pointer: int, length: int) -> bytes | None:
    """``length`` bytes at ``pointer``, or None when the range is not inside the memory."""
    if pointer < 0 or length < 0 or pointer + length > memory.data_len(store):
        return None
    return ctypes.string_at(_base(store, memory) + pointer, length)


def write(store: Storelike, memory: wasmtime.Memory, data: bytes, pointer: int) -> bool:
    """Copy ``data`` to ``pointer``; False (nothing written) when it does not fit there."""
    if pointer < 0 or pointer + len(data) > memory.data_len(store):
        return False
    ctypes.memmove(_base(store, memory) + pointer, data, len(data))
    return True
