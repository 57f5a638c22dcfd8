"""Which packages a guest can import, and adding pure-Python ones to a session."""

from __future__ import annotations

from pathlib import Path

from sandbox.core.runtime_type import RuntimeType
from sandbox.runtimes import runtime_for
from sandbox.runtimes.python import packages as python_packages
from sandbox.sessions.files import session_workspace

JAVASCRIPT_BUILTINS = {
    "std": "QuickJS std module (files, environment, evalScript)",
    "os": "QuickJS os module (readdir, stat, sleep, timers)",
    "helpers": "readText, writeText, appendText, readJson, writeJson, listDir, exists, "
    "makeDir, removeFile (paths relative to the workspace)",
}


def list_available_packages(runtime: RuntimeType | str = RuntimeType.PYTHON) -> dict[str, str]:
    """Importable extras by name -> version (Python) or description (JavaScript).

    The Python guest also has the whole CPython 3.12 standard library.
    """
    if RuntimeType(runtime_for(runtime).name) is RuntimeType.JAVASCRIPT:
        return dict(JAVASCRIPT_BUILTINS)
    return {info.name: info.version for info in python_packages.curated_packages()}


def install_package(
    session_id: str, package: str, *, root: Path | None = None
) -> python_packages.PackageInfo:
    """Add a pure-Python wheel (PyPI name or local .whl path) to one Python session.

    Compiled (native) wheels are refused with the reason: the guest cannot load them. The
    package is importable from the session's next call on.
    """
    return python_packages.install_package(session_workspace(session_id, root=root), package)
