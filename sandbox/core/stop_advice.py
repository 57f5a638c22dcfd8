"""Advice for the calls a limit stopped (``trap_reason``): what to change, in code or policy."""

from __future__ import annotations

import math
from collections.abc import Callable

from sandbox.core.advice import MAX_MEMORY_BYTES, MAX_TIMEOUT_SECONDS, MIB, Advice, Call
from sandbox.core.fuel import round_up
from sandbox.core.result import TrapReason
from sandbox.core.tracebacks import JAVASCRIPT, PYTHON

# --- Limit stops (trap_reason) ---------------------------------------------------------------


def _out_of_fuel(call: Call) -> Advice:
    budget = call.fuel_budget
    recommended = round_up(2 * budget)
    return Advice(
        "OutOfFuel",
        f"The cell used its whole fuel budget of {budget:,} WebAssembly instructions and was "
        "stopped.",
        [
            "Look for a loop whose exit condition never becomes true (while True without a "
            "reachable break, a counter that never changes) and bound it.",
            "If the work is genuinely large, use a cheaper algorithm or split it over several "
            "calls: the session keeps state between calls, each call gets a fresh budget.",
            f"Or raise ExecutionPolicy.fuel_budget above {budget}, e.g. "
            f"fuel_budget={recommended:_} (10_000_000_000 is about one second of CPU).",
        ],
        f"ExecutionPolicy(fuel_budget={recommended:_})",
    )


def _timeout(call: Call) -> Advice:
    limit = call.timeout_seconds
    recommended = min(MAX_TIMEOUT_SECONDS, 2 * limit)
    guidance = [
        "Check for waits that never end: "
        + call.pick("time.sleep() calls", "os.sleep() or setTimeout() delays")
        + " longer than the deadline, or loops polling for something that never happens "
        "(there is no network or other process to wait for).",
    ]
    if limit >= MAX_TIMEOUT_SECONDS:
        return Advice(
            "Timeout",
            f"The cell ran past its {limit:g} s deadline, the maximum allowed.",
            [*guidance, "Split the work over several calls: the session keeps state."],
        )
    return Advice(
        "Timeout",
        f"The cell ran past its {limit:g} s wall-clock deadline and was stopped.",
        [
            *guidance,
            f"If the work needs longer, pass timeout_seconds={recommended:g} to execute() for "
            f"this call, or raise ExecutionPolicy.timeout_seconds above {limit:g} (at most "
            f"{MAX_TIMEOUT_SECONDS:g}).",
        ],
        f"ExecutionPolicy(timeout_seconds={recommended:g})",
    )


def _memory_limit(call: Call) -> Advice:
    limit = call.memory_limit_bytes
    mib = math.ceil(limit / MIB)
    guidance = [
        call.pick(
            "Hold less at once: iterate (generators, reading files line by line) instead of "
            "building whole lists or strings, and del large objects you no longer need.",
            "Hold less at once: process data in chunks, size typed arrays to what is needed, "
            "and drop references (x = null) to large values you no longer need.",
        ),
        f"Write intermediate results to files under {call.workspace} instead of keeping them "
        "all in memory.",
    ]
    if limit >= MAX_MEMORY_BYTES:
        return Advice(
            "MemoryLimit", f"The cell needed more than {mib} MiB, the maximum allowed.", guidance
        )
    recommended = min(MAX_MEMORY_BYTES // MIB, 2 * mib)
    return Advice(
        "MemoryLimit",
        f"The cell needed more than its {mib} MiB memory limit.",
        [
            *guidance,
            f"Or raise ExecutionPolicy.memory_bytes above {limit} ({mib} MiB), e.g. "
            f"memory_bytes={recommended} * 1024 * 1024 (at most "
            f"{MAX_MEMORY_BYTES // MIB} MiB).",
        ],
        f"ExecutionPolicy(memory_bytes={recommended} * 1024 * 1024)",
    )


ITERATIVE_EXAMPLE = {
    PYTHON: (
        "def depth_first(root, children):\n"
        "    stack, seen = [root], []\n"
        "    while stack:  # a list as the stack instead of recursive calls\n"
        "        node = stack.pop()\n"
        "        seen.append(node)\n"
        "        stack.extend(children.get(node, []))\n"
        "    return seen\n"
    ),
    JAVASCRIPT: (
        "function depthFirst(root, children) {\n"
        "  const stack = [root];\n"
        "  const seen = [];\n"
        "  while (stack.length) {  // an array as the stack instead of recursive calls\n"
        "    const node = stack.pop();\n"
        "    seen.push(node);\n"
        "    stack.push(...(children[node] || []));\n"
        "  }\n"
        "  return seen;\n"
        "}\n"
    ),
}
ITERATIVE_GUIDANCE = (
    "Replace the deep recursion with a loop over an explicit stack (or memoise to cut the "
    "depth); recursion thousands of calls deep does not fit in the guest."
)


def _stack_overflow(call: Call) -> Advice:
    return Advice(
        "StackOverflow",
        "The cell recursed so deeply that the interpreter's stack overflowed.",
        [ITERATIVE_GUIDANCE],
        ITERATIVE_EXAMPLE[call.runtime],
    )


def guest_exit(call: Call) -> Advice:
    status = f" with status {call.exit_code}" if call.exit_code >= 0 else ""
    return Advice(
        "GuestExit",
        f"The cell called an exit function{status} instead of finishing.",
        [
            "Do not call "
            + call.pick("sys.exit() or os._exit()", "std.exit()")
            + ": let the cell run to its end, and signal a failure with "
            + call.pick("raise ValueError('...')", "throw new Error('...')")
            + " so the message and line reach you.",
        ],
    )


def _cancelled(call: Call) -> Advice:
    return Advice(
        "Cancelled",
        "The cell was cancelled by the caller before it finished; its output so far is kept.",
        [
            "Nothing in the code failed: run it again if it is still wanted, or a shorter "
            "step of it."
            + (
                " Variables from before are gone (the interpreter restarted); files in "
                f"{call.workspace} are kept."
                if call.session_reset
                else ""
            ),
        ],
    )


def _guest_crash(call: Call) -> Advice:
    return Advice(
        "GuestCrash",
        "The interpreter crashed (a WebAssembly trap, not a "
        + call.pick("Python", "JavaScript")
        + " exception).",
        [
            "Run the cell again; if it crashes again, split it to find the statement that "
            "crashes and do that step another way.",
        ],
    )


_TRAP_RULES: dict[str, Callable[[Call], Advice]] = {
    TrapReason.FUEL_EXHAUSTED: _out_of_fuel,
    TrapReason.TIMEOUT: _timeout,
    TrapReason.MEMORY_LIMIT: _memory_limit,
    TrapReason.STACK_OVERFLOW: _stack_overflow,
    TrapReason.GUEST_EXIT: guest_exit,
    TrapReason.GUEST_CRASH: _guest_crash,
    TrapReason.CANCELLED: _cancelled,
}


def trap_rule(call: Call) -> Advice | None:
    rule = _TRAP_RULES.get(call.trap_reason or "")
    return rule(call) if rule else None
