"""wasmtime's epoch deadline callback, which wasmtime-py 49 does not wrap, through its ctypes FFI.

With a callback installed, a store that reaches its epoch deadline does not trap: wasmtime
calls the callback on the guest's own thread, which either grants more ticks or returns an
error that unwinds the guest. That is the one safe place to act on a running guest from the
host (a Store must not be touched from another thread), so each store gets a short slice of
ticks and the callback decides, at every slice, whether the cell was cancelled, ran past its
deadline, or must flush streamed output.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _bindings, _ffi

# The C types of the callback and its finalizer, read from the binding's own declaration:
# (context, data, *delta, *kind) -> wasmtime_error_t* (0 to continue).
_CALLBACK_TYPE: Any = _bindings._wasmtime_store_epoch_deadline_callback.argtypes[1]
_FINALIZER_TYPE: Any = _bindings._wasmtime_store_epoch_deadline_callback.argtypes[3]
_UPDATE_DEADLINE_CONTINUE = 0

# Returns the ticks to grant, or None to stop the guest.
EpochDecision = Callable[[], int | None]


class EpochWatch:
    """The callback of one store; keep this object as long as the store lives."""

    def __init__(
        self,
        store: wasmtime.Store,
        decide: EpochDecision,
        stop_message: bytes,
        on_keyboard_interrupt: Callable[[], None],
    ) -> None:
        self._decide = decide
        self._on_keyboard_interrupt = on_keyboard_interrupt
        self._stop_message = stop_message
        self._callback = _CALLBACK_TYPE(self._on_deadline)
        _ffi.wasmtime_store_epoch_deadline_callback(
            store.ptr(), self._callback, None, _FINALIZER_TYPE()
        )

    def _on_deadline(self, _context: object, _data: object, delta: Any, kind: Any) -> int:
        """Never raises: an exception in a ctypes callback would be printed and lost."""
        delta[0] = 1
        kind[0] = _UPDATE_DEADLINE_CONTINUE
        try:
            ticks = self._decide()
        except KeyboardInterrupt:  # Ctrl-C on the main thread, which runs this guest
            self._on_keyboard_interrupt()
            ticks = None
        except BaseException:  # a bug of ours: stop this guest rather than run it unbounded
            ticks = None
        if ticks is not None:
            delta[0] = max(1, ticks)
            return 0
        # wasmtime owns the error once it is returned and unwinds the guest with it.
        error = ctypes.cast(_ffi.wasmtime_error_new(self._stop_message), ctypes.c_void_p)
        return error.value or 0
