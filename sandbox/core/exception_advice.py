"""Advice read from the exception a call raised: syntax, lost state, paths, recursion, output."""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import NamedTuple

from sandbox.core.advice import Advice, Call, describe, summary
from sandbox.core.stop_advice import ITERATIVE_EXAMPLE, ITERATIVE_GUIDANCE, guest_exit
from sandbox.core.tracebacks import JAVASCRIPT, PYTHON, GuestError

# --- Guest exceptions ------------------------------------------------------------------------

_SYNTAX_NAMES = frozenset({"SyntaxError", "IndentationError", "TabError"})
_MISSING_MODULE = {
    PYTHON: re.compile(r"^No module named '(?P<module>[^'.]+)"),
    JAVASCRIPT: re.compile(r"^could not load module filename '(?:node:)?(?P<module>[^'/]+)"),
}
# The exception each runtime raises for an unknown name, and how its message names it.
_UNDEFINED = {
    PYTHON: ("NameError", re.compile(r"^name '(?P<name>[^']+)' is not defined")),
    JAVASCRIPT: ("ReferenceError", re.compile(r"^(?P<name>[\w$]+) is not defined$")),
}
_PY_OS_ERROR_PATH = re.compile(r"^\[Errno \d+\] [^:]+: '(?P<path>[^']*)'")
_JS_HELPER_PATH = re.compile(r"^\w+\((?P<path>\"(?:[^\"\\]|\\.)*\")\): ")
_PY_PATH_ERRORS = frozenset(
    {"FileNotFoundError", "PermissionError", "NotADirectoryError", "IsADirectoryError"}
)
PY_PROCESS_ATTRIBUTE = re.compile(
    r"^module 'os' has no attribute '(?:system|popen|fork\w*|spawn\w*|exec\w*|posix_spawn\w*"
    r"|kill\w*|wait\w*)'"
)


def missing_module(call: Call) -> str | None:
    """Top-level name of a module the cell failed to import, in either language."""
    match = _MISSING_MODULE[call.runtime].match(call.error.message) if call.error else None
    return match.group("module") if match else None


def undefined_name(call: Call) -> str | None:
    exception, pattern = _UNDEFINED[call.runtime]
    if call.error is None or call.error.name != exception:
        return None
    match = pattern.match(call.error.message)
    return match.group("name") if match else None


def raised_in(call: Call, files: tuple[str, ...]) -> bool:
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
        PYTHON,
        "SyntaxError",
        r"^```",
        "Remove the Markdown code fences (```python ... ```): send only the Python code.",
    ),
    _hint(
        PYTHON,
        "SyntaxError",
        r"^[!%]",
        "Shell commands and IPython magics (!pip, %time) do not work: the guest has no shell.",
    ),
    _hint(
        JAVASCRIPT,
        "SyntaxError",
        r"^redeclaration of '(?P<name>[^']+)'",
        "'{name}' is declared twice in one scope (top-level let/const/class of a cell can be "
        "declared again, but not beside a var or function of that name, nor twice inside one "
        "block or function). Reuse it ({name} = ...), pick a new name, or wrap the code in a "
        "block {{ ... }} so its declarations stay local to it.",
        "{{\n  const {name} = 2;  // block-scoped: safe to run again\n  console.log({name});\n}}",
    ),
    _hint(
        JAVASCRIPT,
        "SyntaxError",
        r"^Unexpected (?:identifier|token)",
        "If line {line} is a static import (import x from '...'): cells are scripts, not "
        "modules. std, os and the file helpers are already globals; Node and npm modules are "
        "not available.",
    ),
    _hint(
        PYTHON,
        "FileNotFoundError",
        r"No such file or directory: '(?P<path>[^']*)'",
        "'{path}' does not exist: list the workspace with os.listdir('.') to check the name, "
        "and create parent directories with os.makedirs(path, exist_ok=True) before writing.",
    ),
    _hint(
        JAVASCRIPT,
        "Error",
        r"^\w+\(\"(?P<path>.*)\"\): No such file or directory",
        "'{path}' does not exist: check the name with listDir() or exists(path), and create "
        "parent directories with makeDir(dir) before writing.",
    ),
    _hint(
        JAVASCRIPT,
        "TypeError",
        r"of (?P<value>null|undefined)$",
        "A value on line {line} is {value}. std.open() and std.loadFile() return null when a "
        "file is missing or outside the workspace: prefer readText(path), which throws a clear "
        "error, or check exists(path) first.",
    ),
    _hint(
        PYTHON,
        "KeyError",
        r"(?P<key>.+)",
        "The key {key} is missing: use d.get(key, default) or test `key in d`; print(list(d)) "
        "shows the keys that exist.",
    ),
    _hint(
        PYTHON,
        "IndexError",
        r"out of range",
        "Check len(...) before indexing; the sequence is shorter than the code assumes.",
    ),
    _hint(
        PYTHON,
        "ZeroDivisionError",
        r"",
        "Guard the divisor (e.g. `if count:`) or handle the empty case explicitly.",
    ),
    _hint(
        PYTHON,
        "AttributeError",
        r"^'NoneType' object has no attribute",
        "A value on line {line} is None: a call returned None (list.sort(), re.match() with no "
        "match, a function without return); check it before using it.",
    ),
    _hint(
        PYTHON,
        "JSONDecodeError",
        r"",
        "The text is not valid JSON: print repr(text[:200]) to see what it really contains.",
    ),
    _hint(
        JAVASCRIPT,
        "SyntaxError",
        r"in JSON at position",
        "The text is not valid JSON: console.log(JSON.stringify(text.slice(0, 200))) shows what "
        "it really contains.",
    ),
    _hint(
        PYTHON,
        "NameError",
        _UNDEFINED[PYTHON][1].pattern,
        "'{name}' is not defined in this session: define or import it in this cell or an "
        "earlier one (names are case-sensitive).",
    ),
    _hint(
        JAVASCRIPT,
        "ReferenceError",
        _UNDEFINED[JAVASCRIPT][1].pattern,
        "'{name}' is not defined in this session: declare it in this cell or an earlier one "
        "(names are case-sensitive). Only ES2023 built-ins, std, os and the file helpers exist "
        "as globals.",
    ),
    _hint(
        JAVASCRIPT,
        "Uncaught",
        r"",
        "A value that is not an Error was thrown: throw new Error('...') instead, so the "
        "message carries a line number.",
    ),
)


def _hints(call: Call, error: GuestError) -> tuple[list[str], str | None]:
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


def _exception_advice(call: Call, error: GuestError, error_type: str) -> Advice:
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
    return Advice(
        error_type,
        summary(error),
        [f"Fix {where}{code}, which raised {describe(error)}.", *texts, state],
        example,
    )


def syntax_rule(call: Call) -> Advice | None:
    error = call.error
    if error is None or error.short_name not in _SYNTAX_NAMES or "JSON" in error.message:
        return None
    return _exception_advice(call, error, "SyntaxError")


# What a restart loses. With auto_persist_globals the driver restores saved values, so the
# advice must hold either way.
LOST_STATE = (
    "Variables, functions and imports from earlier cells are gone, except values restored by "
    "auto_persist_globals (functions, classes and the names in metadata['unsaved_globals'] "
    "never are); files under {workspace} remain."
)


def _state_recovery_example(call: Call, name: str) -> str:
    return call.pick(
        f"import json\nwith open('{name}.json', 'w') as f:  # save results as you go\n"
        f"    json.dump({name}, f)\nwith open('{name}.json') as f:  # reload after a reset\n"
        f"    {name} = json.load(f)",
        f"writeJson('{name}.json', {name});  // save results as you go\n"
        f"var {name} = readJson('{name}.json');  // reload after a reset",
    )


def lost_name_rule(call: Call) -> Advice | None:
    name = undefined_name(call)
    if name is None or not call.session_reset or call.error is None:
        return None
    return Advice(
        "NameError",
        f"'{name}' is not defined because the session was reset: the interpreter restarted "
        "and lost it.",
        [
            f"{LOST_STATE.format(workspace=call.workspace)} Re-run the code that defines "
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


def _failed_path(call: Call) -> str | None:
    """The path a file operation failed on, when the error names one."""
    error = call.error
    if error is None:
        return None
    if call.python:
        match = _PY_OS_ERROR_PATH.match(error.message)
        return match.group("path") if match and error.short_name in _PY_PATH_ERRORS else None
    match = _JS_HELPER_PATH.match(error.message)
    return str(json.loads(match.group("path"))) if match and error.name == "Error" else None


def path_rule(call: Call) -> Advice | None:
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
    return Advice(
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


def recursion_rule(call: Call) -> Advice | None:
    if call.error is None or call.error.short_name != "RecursionError":
        return None
    return Advice(
        "RecursionError",
        summary(call.error),
        [
            ITERATIVE_GUIDANCE,
            "Raising sys.setrecursionlimit() does not help: deeper recursion runs into the "
            "guest's stack or fuel limit instead.",
        ],
        ITERATIVE_EXAMPLE[call.runtime],
    )


def exception_rule(call: Call) -> Advice | None:
    """Any other exception: name it and point at the user's line."""
    return _exception_advice(call, call.error, "RuntimeError") if call.error else None


def truncation_advice(call: Call) -> list[str]:
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


def truncation_rule(call: Call) -> Advice | None:
    guidance = truncation_advice(call)
    if not guidance:
        return None
    return Advice(
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


def exit_rule(call: Call) -> Advice | None:
    """A non-zero status with no exception: the cell exited on purpose (sys.exit(n))."""
    if call.exit_code == 0:
        return None
    advice = guest_exit(call)
    last = call.stderr.strip().splitlines()[-1:] if call.stderr.strip() else []
    return advice._replace(message=advice.message + (f" stderr: {last[0]}" if last else ""))
