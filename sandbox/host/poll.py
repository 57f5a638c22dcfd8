"""Our implementation of WASI ``poll_oneoff``: bounded sleeps, and the driver's hypercall.

wasmtime's own ``poll_oneoff`` sleeps in native code where no epoch deadline can reach it, so a
guest calling ``time.sleep(10**6)`` would outlive its deadline. We replace the function
completely (a host function cannot delegate to wasmtime's WASI implementation) and sleep on a
host event, capped at the call's deadline.

The same function doubles as the channel between host and guest driver: a single clock
subscription of ``HYPERCALL_BASE_MS + token * HYPERCALL_STATUS_RANGE + status`` milliseconds
from now means "this cell finished
with ``status``; hand me the next one". ``token`` is a secret drawn per interpreter and handed
to the driver in its argv, which the driver then erases: a cell that does not know it cannot
end its cell early or answer in place of the next one, because a sleep of that shape with any
other token is an ordinary (very long) sleep, capped at the deadline like any other. In
QuickJS the token lives in the driver module's scope, which cells cannot reach; in CPython a
cell can find the driver's frame (see docs/security.md).
CPython sleeps until absolute deadlines on the guest's monotonic clock. wasmtime's WASI starts
that clock at zero when the WASI context is made, so GuestClock, created at the same moment,
reads the same clock to within microseconds without intercepting every ``clock_time_get``
(which would cost the guest a host callback per ``time.time()``).
"""

from __future__ import annotations

import secrets
import struct
import time
from dataclasses import dataclass

# A hypercall sleeps HYPERCALL_BASE_MS + token * HYPERCALL_STATUS_RANGE + status milliseconds:
# ~139 years and more, so no program sleeps that long by accident, and small enough that the
# nanoseconds fit WASI's 64-bit timeout.
HYPERCALL_BASE_MS = 1 << 42
HYPERCALL_TOKEN_BITS = 32
HYPERCALL_STATUS_RANGE = 1 << 10
# Status bit the driver sets when the cell died of running out of memory (the low byte is the
# exit code).
STATUS_MEMORY_ERROR = 0x100
# Not a cell's end: the driver asks the host to answer the tool call it wrote (tool_channel.py).
STATUS_TOOL_CALL = 0x200

_NANOS = 1_000_000_000
_NANOS_PER_MS = 1_000_000
_SUBSCRIPTION = struct.Struct(
    "<QB7xI4xQQH6x"
)  # userdata, tag, clock id | fd, timeout, precision, flags
_EVENT = struct.Struct("<QHB5xQH6x")  # userdata, errno, type, nbytes, flags
_TAG_CLOCK = 0
_CLOCK_REALTIME = 0
_CLOCK_MONOTONIC = 1
_FLAG_ABSTIME = 1
ERRNO_SUCCESS = 0
ERRNO_INVAL = 28
ERRNO_FAULT = 21


class GuestClock:
    """The guest's view of time; create it when its WASI context is made."""

    def __init__(self) -> None:
        self._origin = time.monotonic_ns()

    def now_ns(self, clock_id: int) -> int | None:
        """The reading of WASI clock ``clock_id``, or None for a clock sleeps cannot use."""
        if clock_id == _CLOCK_REALTIME:
            return time.time_ns()
        if clock_id == _CLOCK_MONOTONIC:
            return time.monotonic_ns() - self._origin
        return None


@dataclass(frozen=True)
class Subscription:
    userdata: int
    tag: int
    clock_id: int
    timeout_ns: int
    flags: int

    def wait_ns(self, clock: GuestClock) -> int:
        """How long this clock subscription asks to wait, from now."""
        if not self.flags & _FLAG_ABSTIME:
            return self.timeout_ns
        now = clock.now_ns(self.clock_id)
        return max(0, self.timeout_ns - now) if now is not None else 0


def parse_subscriptions(raw: bytes | bytearray) -> list[Subscription]:
    subscriptions = []
    for offset in range(0, len(raw), _SUBSCRIPTION.size):
        userdata, tag, clock_or_fd, timeout, _precision, flags = _SUBSCRIPTION.unpack_from(
            raw, offset
        )
        subscriptions.append(Subscription(userdata, tag, clock_or_fd, timeout, flags))
    return subscriptions


def new_hypercall_token() -> int:
    return secrets.randbits(HYPERCALL_TOKEN_BITS)


def hypercall_status(subscriptions: list[Subscription], token: int) -> int | None:
    """The status a driver reports, if these subscriptions are its hypercall with ``token``."""
    # Drivers wait with a relative timeout, which arrives exactly; an absolute deadline would be
    # off by however far our clock's origin is from wasmtime's.
    if len(subscriptions) != 1 or subscriptions[0].tag != _TAG_CLOCK:
        return None
    if subscriptions[0].flags & _FLAG_ABSTIME:
        return None
    code = (subscriptions[0].timeout_ns + _NANOS_PER_MS // 2) // _NANOS_PER_MS
    code -= HYPERCALL_BASE_MS
    if code < 0 or code // HYPERCALL_STATUS_RANGE != token:
        return None
    return code % HYPERCALL_STATUS_RANGE


def encode_event(subscription: Subscription) -> bytes:
    """The event reporting ``subscription`` as fired (clock elapsed, or descriptor ready)."""
    return _EVENT.pack(subscription.userdata, ERRNO_SUCCESS, subscription.tag, 0, 0)


def fired(subscriptions: list[Subscription], clock: GuestClock) -> tuple[float, list[Subscription]]:
    """How long to wait and which subscriptions fire then, as a real poll would report them.

    Descriptor subscriptions (stdin, files) are always ready: there is nothing to wait for in a
    sandbox with no sockets and an empty stdin. Otherwise the earliest clock fires.
    """
    ready = [sub for sub in subscriptions if sub.tag != _TAG_CLOCK]
    if ready:
        return 0.0, ready
    earliest = min(subscriptions, key=lambda sub: sub.wait_ns(clock))
    return earliest.wait_ns(clock) / _NANOS, [earliest]
