"""Which packages a guest can import, and adding pure-Python ones to a session."""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.core.runtime_type import RuntimeType
from sandbox.runtimes import runtime_for
from sandbox.runtimes.python import packages as python_packages
from sandbox.runtimes.python.runtime import PythonRuntime
from sandbox.sessions.files import session_workspace
from sandbox.sessions.workspace import layout_for

# C libraries and build tools the interpreter's manifest lists: nothing to import by that name.
_NATIVE_LIBRARIES = frozenset(
    [
        "zlib",
        "bzip2",
        "xz",
        "sqlite-autoconf",
        "openblas",
        "freetype",
        "harfbuzz",
        "sheenbidi",
        "libraqm",
        "qhull",
        "libxml2",
        "libxslt",
        "pybind11",
        "cppy",
    ]
)
JAVASCRIPT_BUILTINS = {
    "std": "QuickJS std module (files, environment, evalScript)",
    "os": "QuickJS os module (readdir, stat, sleep, timers)",
    "helpers": "readText, writeText, appendText, readJson, writeJson, listDir, exists, "
    "makeDir, removeFile (paths relative to the workspace)",
}


def list_available_packages(runtime: RuntimeType | str = RuntimeType.PYTHON) -> dict[str, str]:
    """Importable packages by name -> version (Python) or description (JavaScript).

    Python: the packages compiled into CPython 3.15's stdlib zip plus the curated extras (the
    whole standard library is there too).
    """
    program = runtime_for(runtime)
    if RuntimeType(program.name) is RuntimeType.JAVASCRIPT:
        return dict(JAVASCRIPT_BUILTINS)
    assert isinstance(program, PythonRuntime)
    bundled = {
        name: version
        for name, version in program.manifest().items()
        if name not in _NATIVE_LIBRARIES
    }
    extras = {info.name: info.version for info in python_packages.curated_packages()}
    return dict(sorted({**bundled, **extras}.items()))


def install_package(
    session_id: str,
    package: str,
    workspace_root: str | os.PathLike[str] | None = None,
    *,
    root: Path | None = None,
) -> python_packages.PackageInfo:
    """Add a pure-Python wheel (PyPI name or local .whl path) to one Python session.

    Compiled (native) wheels are refused with the reason: the guest cannot load them. The
    package is importable from the session's next call on.
    """
    layout = layout_for(root, workspace_root)
    return python_packages.install_package(session_workspace(session_id, layout), package)
