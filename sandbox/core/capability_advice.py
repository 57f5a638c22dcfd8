"""Advice for code that wants what the sandbox does not offer: network, processes, native
modules and Node.js APIs, each with the substitute that works here."""

from __future__ import annotations

from typing import NamedTuple

from sandbox.core.advice import JS_HELPERS, Advice, Call, summary
from sandbox.core.exception_advice import (
    PY_PROCESS_ATTRIBUTE,
    missing_module,
    raised_in,
    undefined_name,
)
from sandbox.core.tracebacks import JAVASCRIPT, PYTHON

# Module names (per runtime) whose only purpose is the network.
_NETWORK_MODULES = {
    PYTHON: frozenset({"requests", "httpx", "aiohttp", "urllib3", "ssl", "websocket"}),
    JAVASCRIPT: frozenset({"http", "https", "net", "tls", "dgram", "axios", "node-fetch"}),
}
_NETWORK_FILES = ("/socket.py", "/ssl.py", "/http/client.py", "/urllib/request.py", "/smtplib.py")
_JS_NETWORK_GLOBALS = frozenset({"fetch", "XMLHttpRequest", "WebSocket", "EventSource"})


def network_rule(call: Call) -> Advice | None:
    attempted = (
        missing_module(call) in _NETWORK_MODULES[call.runtime]
        or raised_in(call, _NETWORK_FILES)
        or (call.error is not None and "'_socket'" in call.error.message)
        or undefined_name(call) in _JS_NETWORK_GLOBALS
    )
    if not attempted or call.error is None:
        return None
    return Advice(
        "NetworkUnavailable",
        f"The cell tried to use the network ({summary(call.error)}), which the sandbox does "
        "not have.",
        [
            "There is no network in the guest (WASI preview 1 has no sockets) and no setting "
            "enables it: HTTP, DNS and sockets cannot work.",
            "Work on local data instead: the host can copy it into the workspace with "
            "write_session_file(session_id, 'data.json', data), or mount a directory read-only "
            "with ExecutionPolicy(mounts={host_dir: '/data'}); then read it with "
            + call.pick("open('data.json')", "readJson('data.json')")
            + ".",
        ],
        call.pick(
            "import json\nwith open('data.json') as f:\n    data = json.load(f)",
            "var data = readJson('data.json');",
        ),
    )


_PROCESS_MODULES = {
    PYTHON: frozenset({"multiprocessing"}),
    JAVASCRIPT: frozenset({"child_process", "cluster", "worker_threads"}),
}


def process_rule(call: Call) -> Advice | None:
    error = call.error
    if error is None:
        return None
    attempted = (
        missing_module(call) in _PROCESS_MODULES[call.runtime]
        or raised_in(call, ("/subprocess.py",))
        or "does not support processes" in error.message
        or (call.python and PY_PROCESS_ATTRIBUTE.match(error.message) is not None)
    )
    if not attempted:
        return None
    return Advice(
        "SubprocessUnavailable",
        f"The cell tried to start a process ({summary(error)}), which the sandbox cannot do.",
        [
            "The guest cannot run processes or shell commands (WASI has no process API) and no "
            "setting enables it.",
            call.pick(
                "Do the work in Python itself: os.listdir/shutil/pathlib instead of ls, cp, "
                "mv, rm; a library call instead of a command-line tool; a loop instead of "
                "multiprocessing.",
                f"Do the work in JavaScript itself: {JS_HELPERS} instead of shell commands.",
            ),
        ],
        call.pick("import os\nprint(sorted(os.listdir('.')))", "console.log(listDir());"),
    )


class _Substitute(NamedTuple):
    advice: str
    example: str | None = None


# Packages whose compiled extensions the guest cannot load, so installing them cannot help.
_COMPILED = "is compiled code, which the WebAssembly guest cannot load (install_package refuses it)"
_SUBSTITUTES: dict[tuple[str, str], _Substitute] = {
    (PYTHON, "torch"): _Substitute(
        f"torch {_COMPILED}: numpy, scipy and scikit-learn are available for numerical work.",
        "import numpy as np\nweights = np.linalg.lstsq(np.c_[np.ones(3), [1, 2, 3]], [2, 4, 6])[0]"
        "\nprint(weights.round(3))",
    ),
    (PYTHON, "tensorflow"): _Substitute(
        f"tensorflow {_COMPILED}: numpy, scipy and scikit-learn are available."
    ),
    (PYTHON, "polars"): _Substitute(f"polars {_COMPILED}: use pandas, which is available."),
    (JAVASCRIPT, "std"): _Substitute(
        "std is already a global: call std.getenv(), std.out.puts() etc. without importing it.",
        "console.log(typeof std.getenv);",
    ),
    (JAVASCRIPT, "os"): _Substitute(
        "os is already a global (the QuickJS os module, not Node's): call os.readdir(), "
        "os.sleep() etc. without importing it.",
        "console.log(os.readdir('.')[0]);",
    ),
    (JAVASCRIPT, "fs"): _Substitute(
        f"Use the file helpers instead of fs: {JS_HELPERS} (paths relative to the workspace).",
        "writeText('notes.txt', 'hello');\nconsole.log(readText('notes.txt'));",
    ),
    (JAVASCRIPT, "path"): _Substitute(
        "Build paths with template strings instead of path: relative paths resolve under the "
        "workspace."
    ),
}


def module_rule(call: Call) -> Advice | None:
    module = missing_module(call)
    if module is None or call.error is None:
        return None
    substitute = _SUBSTITUTES.get((call.runtime, module))
    guidance = [
        call.pick(
            "The guest has the Python 3.15 standard library plus the packages that "
            "list_available_packages() names (numpy, pandas, scipy, scikit-learn, matplotlib, "
            f"...); '{module}' is not among them, and pip cannot run inside the guest (no "
            "network, no processes).",
            f"'{module}' cannot be loaded: the guest is QuickJS (ES2023) with the std and os "
            f"globals and the file helpers ({JS_HELPERS}); Node built-in modules and npm "
            "packages are not available.",
        ),
        substitute.advice
        if substitute
        else call.pick(
            "If it is a pure-Python package, the host can add it to this session with "
            "install_package(session_id, '<its PyPI name>') (importable from the next call); "
            "otherwise write the needed code with the standard library.",
            "Write the needed code inline with what is available.",
        ),
    ]
    return Advice(
        "ModuleNotAvailable",
        f"Module '{module}' is not available in the guest ({summary(call.error)}).",
        guidance,
        substitute.example if substitute else None,
    )


_NO_EXPORTS = _Substitute(
    "There are no modules to export from: top-level const/let/function declarations already "
    "stay available to later cells."
)
_NO_DIRNAME = _Substitute(
    "The working directory is the workspace: use relative paths such as 'data.csv'."
)
_NODE_GLOBALS: dict[str, _Substitute] = {
    "require": _Substitute(
        f"require() does not exist: for files use the helpers ({JS_HELPERS}), for the "
        "environment and streams the std/os globals; npm packages are not available.",
        "writeJson('rows.json', [{a: 1}]);\nconsole.log(readJson('rows.json').length);",
    ),
    "process": _Substitute(
        "process does not exist: process.env.NAME is std.getenv('NAME'), "
        "process.stdout.write(s) is std.out.puts(s); to stop, let the cell end or throw.",
        "std.out.puts((std.getenv('HOME') ?? '(unset)') + '\\n');",
    ),
    "Buffer": _Substitute(
        "Buffer does not exist: use strings or Uint8Array, and readText/writeText for files.",
        "var bytes = new Uint8Array([104, 105]);\nconsole.log(String.fromCharCode(...bytes));",
    ),
    "module": _NO_EXPORTS,
    "exports": _NO_EXPORTS,
    "__dirname": _NO_DIRNAME,
    "__filename": _NO_DIRNAME,
    "global": _Substitute("Use globalThis instead of global.", "globalThis.counter = 1;"),
    "setImmediate": _Substitute(
        "Use setTimeout(fn, 0) instead of setImmediate.",
        "setTimeout(() => console.log('later'), 0);",
    ),
    "clearImmediate": _Substitute("Use setTimeout/clearTimeout instead of setImmediate."),
}


def node_api_rule(call: Call) -> Advice | None:
    name = undefined_name(call)
    node = _NODE_GLOBALS.get(name or "") if not call.python else None
    if node is None or call.error is None:
        return None
    return Advice(
        "NodeOnlyApi",
        f"'{name}' is a Node.js API; the guest is QuickJS, not Node ({summary(call.error)}).",
        [
            node.advice,
            f"Available instead: the file helpers {JS_HELPERS} (relative paths resolve under "
            f"{call.workspace}) and the QuickJS std and os globals.",
        ],
        node.example,
    )
