"""Language runtimes: each pairs a pinned WebAssembly interpreter with its guest driver."""

from __future__ import annotations

from sandbox.core.runtime_type import RuntimeType
from sandbox.host.guest import GuestProgram
from sandbox.runtimes.javascript.runtime import JavaScriptRuntime
from sandbox.runtimes.python.runtime import PythonRuntime

_RUNTIMES: dict[RuntimeType, GuestProgram] = {
    RuntimeType.PYTHON: PythonRuntime(),
    RuntimeType.JAVASCRIPT: JavaScriptRuntime(),
}


def runtime_for(runtime: RuntimeType | str) -> GuestProgram:
    """The runtime for a RuntimeType or its string value ("python", "javascript")."""
    try:
        return _RUNTIMES[RuntimeType(runtime)]
    except ValueError:
        allowed = ", ".join(repr(kind.value) for kind in RuntimeType)
        raise ValueError(f"unknown runtime {runtime!r}; allowed: {allowed}") from None
