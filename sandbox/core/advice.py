"""What the advice rules share: the call as they see it, the advice they give, its wording."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from sandbox.core.tracebacks import PYTHON, GuestError

MIB = 1024 * 1024
# ExecutionPolicy's upper bounds: advice to raise a limit past them would be rejected.
MAX_MEMORY_BYTES = 4096 * MIB
MAX_TIMEOUT_SECONDS = 3600.0

# JavaScript examples declare nothing with top-level let/const: a cell may re-declare those, but
# not over a var or function the user already has of that name.
JS_HELPERS = (
    "readText, writeText, appendText, readJson, writeJson, listDir, exists, makeDir, removeFile"
)


@dataclass(frozen=True)
class Call:
    """One execute() call as the rules see it."""

    runtime: str
    exit_code: int
    trap_reason: str | None
    stdout_truncated: bool
    stderr_truncated: bool
    session_reset: bool
    fuel_budget: int
    timeout_seconds: float
    memory_limit_bytes: int
    workspace: str
    stderr: str
    error: GuestError | None

    @property
    def python(self) -> bool:
        return self.runtime == PYTHON

    def pick(self, python: str, javascript: str) -> str:
        """The runtime's variant of a piece of advice, so rules are written once for both."""
        return python if self.python else javascript


class Advice(NamedTuple):
    error_type: str
    message: str
    guidance: list[str]
    example: str | None = None


Rule = Callable[[Call], Advice | None]


def where(error: GuestError) -> str:
    if error.line is None:
        return ""
    return f" on line {error.line}" + (f", column {error.column}" if error.column else "")


def describe(error: GuestError) -> str:
    return f"{error.name}: {error.message}" if error.message else error.name


def summary(error: GuestError) -> str:
    return describe(error) + where(error)
