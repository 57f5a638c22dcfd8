"""The driver that runs *inside* the WebAssembly CPython 3.15 reactor, never on the host.

The reactor keeps one interpreter alive and the host runs each cell as a *turn*: it calls the
module's ``turn`` export with the bytes ``<settings>\n<cell>``, and the turn ends when the
cell ends, so nothing in the guest decides where a cell stops. The reactor's own turn would
parse those bytes as a program and run it in ``__main__``; the warm-up points it at the driver
instead (see ``_take_turns``), so a turn costs one parse of the cell. A status other than 0
goes back through the reactor's host door (``_host.call``), and the user's code runs in a
namespace of its own, never in the reactor's ``__main__``.

This file is loaded once, while the host builds the snapshot every fresh interpreter starts
from, together with the modules cells and tracebacks need; so none of that costs a cell.

With a globals directory, the namespace is saved after every cell (picklable values, plus
imported modules by name) and restored when an interpreter first serves the session, so a new
process or a reset interpreter picks up where the last completed cell left off. What could not
be saved is listed in report.json.
"""

import _ast
import ast  # also what traceback needs to place carets, loaded in the snapshot
import builtins
import contextlib
import gc
import importlib
import importlib.machinery
import linecache
import os
import pickle
import re
import sys
import traceback
import types
from collections.abc import Callable

import _host

_STATUS_MEMORY_ERROR = 0x100
_MT_WORDS = 624  # the Mersenne Twister's state
_CELL = "<cell>"
_REPORT_STATUS = b"\x00status "
_REPORT_DISPLAY = b"\x00display "
_PACKAGES = "/packages"
if _PACKAGES not in sys.path:
    sys.path.append(_PACKAGES)

import _display  # noqa: E402 - our guest_lib, in /packages: the echo of a cell's last value

# Freed when a cell dies of MemoryError, so the driver can still report it while the cell's
# data fills the interpreter; taken again once memory allows.
_RESERVE_BYTES = 2 << 20


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


# Guest library frames a traceback leaves out: the host-tool proxies raise for the host.
_QUIET_FILES = frozenset({f"{_PACKAGES}/sandbox_tools.py", f"{_PACKAGES}/mcp_tools.py"})


def _report(error: BaseException, source: str) -> None:
    """Print the traceback from the user's first frame on: our driver frames are noise, and
    so are the frames of the tool proxies an error from a host tool passes through."""
    lines = source.splitlines(keepends=True)
    linecache.cache[_CELL] = (len(source), None, lines, _CELL)
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != _CELL:
        tb = tb.tb_next
    report = traceback.TracebackException(type(error), error, tb)
    shown = [frame for frame in report.stack if frame.filename not in _QUIET_FILES]
    if len(shown) != len(report.stack):
        report.stack = traceback.StackSummary.from_list(shown)
    report.print(file=sys.stderr)


# The name a cell's trailing expression is bound to, for the echo (saved globals skip "__").
_ECHO = "__sandbox_echo__"


# How a top-level line that can only begin a statement starts: a keyword or an assignment.
_STATEMENT = (
    r"(?:def|class|if|elif|else|for|while|with|try|except|finally|import|from|return|del|pass"
    r"|raise|assert|global|nonlocal|break|continue|async)\b"
    r"|[A-Za-z_][\w.]*(?:\[[^\]]*\])?\s*(?:[-+*/%&|^@]|//|\*\*|>>|<<)?=(?!=)"
    r"|(?!lambda\b)[A-Za-z_]\w*\s*:"
)
_IS_STATEMENT = re.compile(_STATEMENT)
# Lines not worth trying as an expression: statements, and soft keywords or a decorator,
# which usually begin one (trying would cost a SyntaxError).
_MAYBE_STATEMENT = re.compile(_STATEMENT + r"|(?:match|case|type|await)\b|@")


def _last_statement_start(lines: list[str]) -> int:
    """The index of the last line that starts at column 0 (not a comment), or -1.

    It begins the last top-level statement whenever what precedes it compiles on its own: a
    statement only runs on past a line end inside a bracket or a string or after a
    backslash, and each would leave that part incomplete.
    """
    start = len(lines) - 1
    while start >= 0 and (not lines[start].strip() or lines[start][0] in " \t#"):
        start -= 1
    return start


def _compile_cell(source: str) -> tuple[types.CodeType, types.CodeType | None, bool]:
    """The cell's code, its trailing expression's code if compiled apart, and whether the
    cell ends in an expression to echo.

    Parsing into Python AST objects and compiling those back costs as much again as a
    compile (~20 us for ``x += 1``, ~0.4 ms for a 50-line cell), so the text decides first:
    a cell that is one statement, not an expression, is compiled as it is; a cell whose last
    top-level line begins an expression is compiled as its statements and that expression
    (the expression's lines keep their numbers). Otherwise, one parse: the trailing
    expression becomes an assignment to ``_ECHO`` in the tree, which keeps every position
    (tracebacks and their carets stay right), and the tree is compiled once.
    """
    lines = source.splitlines(keepends=True)
    start = _last_statement_start(lines)
    if start >= 0 and ";" not in lines[start]:
        if start == 0 and _IS_STATEMENT.match(lines[start]):
            return compile(source, _CELL, "exec"), None, False
        if not _MAYBE_STATEMENT.match(lines[start]):
            try:
                last = compile("\n" * start + "".join(lines[start:]), _CELL, "eval")
                body = compile("".join(lines[:start]), _CELL, "exec")
                return body, last, True
            except SyntaxError:
                pass  # not an expression after all, or a syntax error the parser will name
    tree = compile(source, _CELL, "exec", _ast.PyCF_ONLY_AST)
    assert isinstance(tree, _ast.Module)
    last_statement = tree.body[-1] if tree.body else None
    if not isinstance(last_statement, _ast.Expr):
        return compile(tree, _CELL, "exec"), None, False
    target = ast.copy_location(_ast.Name(_ECHO, _ast.Store()), last_statement)
    tree.body[-1] = ast.copy_location(_ast.Assign([target], last_statement.value), last_statement)
    return compile(tree, _CELL, "exec"), None, True


def _send_table(table: str) -> None:
    """Hand the host a markdown table of the cell's value, for MCP clients. A nicety: a host
    that does not take it (the snapshot's warm-up) must not fail the cell."""
    with contextlib.suppress(Exception):
        _host.call(_REPORT_DISPLAY + table.encode("utf-8", errors="replace"))


def _run_cell(source: str, namespace: dict[str, object]) -> int:
    try:
        code, last, echoes = _compile_cell(source)
        exec(code, namespace)
        if echoes:
            # REPL rule: a cell ending in an expression shows its value unless it is None
            # (a table stays short, a figure comes back as a PNG).
            value = eval(last, namespace) if last is not None else namespace.pop(_ECHO, None)
            if value is not None:
                table = _display.show(value)
                if table is not None:
                    _send_table(table)
        return 0
    except SystemExit as exit_request:
        return _exit_status(exit_request.code)
    except MemoryError as error:
        _reserve.release()
        _report(error, source)
        return _STATUS_MEMORY_ERROR | 1
    except BaseException as error:
        _report(error, source)
        return 1


_NOT_SAVED_CODE = "functions and classes are not saved: run their definitions again"


def _save_globals(namespace: dict[str, object], directory: str) -> None:
    import json
    import pickle

    values: dict[str, bytes] = {}
    modules: dict[str, str] = {}
    unsaved: dict[str, str] = {}
    for name, value in namespace.items():
        if name.startswith("__"):
            continue
        if isinstance(value, types.ModuleType):
            modules[name] = value.__name__
        elif isinstance(value, (types.FunctionType, type)):
            unsaved[name] = _NOT_SAVED_CODE
        else:
            try:
                values[name] = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as error:
                unsaved[name] = f"cannot be pickled ({type(error).__name__}: {error})"[:300]
    try:
        os.makedirs(directory, exist_ok=True)
        with open(directory + "/globals.pickle.tmp", "wb") as state:
            pickle.dump({"values": values, "modules": modules}, state)
        os.replace(directory + "/globals.pickle.tmp", directory + "/globals.pickle")
        saved = sorted([*values, *modules])
    except OSError as error:
        saved, unsaved = [], {name: f"state not written: {error}" for name in [*values, *modules]}
    try:
        with open(directory + "/report.json", "w") as report:
            json.dump({"saved": saved, "unsaved": unsaved}, report)
    except OSError:
        pass  # no room left: the host then reports nothing saved


def _restore_globals(namespace: dict[str, object], directory: str) -> None:
    import pickle

    try:
        with open(directory + "/globals.pickle", "rb") as state:
            saved = pickle.load(state)
    except (OSError, pickle.UnpicklingError, EOFError):
        return
    for alias, module in saved.get("modules", {}).items():
        try:
            namespace[alias] = importlib.import_module(module)
        except Exception:
            continue
    for name, blob in saved.get("values", {}).items():
        try:
            namespace[name] = pickle.loads(blob)
        except Exception:  # e.g. an instance of a class not yet redefined
            continue


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # the cell may have replaced or closed a stream
            continue


_stdio: types.ModuleType | None = None


def _stream_stdio(on: bool) -> None:
    """Switch the guest's stdout to streaming (``guest_lib/_stdio.py``) for a streamed cell.

    Imported by the first streamed cell, not in the snapshot: an interpreter whose output
    nobody streams keeps the heap (and the per-turn work) it had without streaming.
    """
    global _stdio
    if _stdio is None:
        if not on:
            return
        import _stdio as module

        _stdio = module
    _stdio.stream(on)


class _Reserve:
    def __init__(self) -> None:
        self._block: bytearray | None = bytearray(_RESERVE_BYTES)

    def release(self) -> None:
        self._block = None

    def retake(self) -> None:
        """Take the reserve back only if as much again stays free."""
        if self._block is None:
            try:
                bytearray(2 * _RESERVE_BYTES)
                self._block = bytearray(_RESERVE_BYTES)
            except MemoryError:
                pass  # still full: the next cell runs without it


_reserve = _Reserve()


class _SessionPackages:
    """Finds packages install_package() added to the session after this interpreter started.

    It sits last on sys.meta_path, so it costs nothing until an import would otherwise fail.
    """

    def __init__(self, path: str) -> None:
        self._path = path

    def find_spec(
        self, name: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if path is not None or self._path in sys.path or not os.path.isdir(self._path):
            return None
        sys.path.insert(0, self._path)
        importlib.invalidate_caches()
        return importlib.machinery.PathFinder.find_spec(name)


def _help(*topic: object) -> None:
    """help() as in the REPL; pydoc pages nothing in a sandbox."""
    import pydoc

    pydoc.help(*topic)


class _Session:
    """The user's namespace and the session's settings, which the host sends with each cell."""

    def __init__(self) -> None:
        self.namespace: dict[str, object] = {"__name__": "__main__", "__builtins__": builtins}
        self.globals_dir = ""
        self.configured = False

    def configure(self, workspace: str, globals_dir: str) -> None:
        """Once per interpreter, at its first cell: the workspace and the persisted globals."""
        self.configured = True
        os.chdir(workspace)
        self.globals_dir = globals_dir
        sys.meta_path.append(_SessionPackages(workspace.rstrip("/") + "/.sandbox-packages"))
        if self.globals_dir:
            _restore_globals(self.namespace, self.globals_dir)

    def run(self, payload: bytes) -> None:
        """One cell: ``payload`` is b"1" (output is streamed) or b"0", the session's settings
        (workspace and globals directory, NUL-separated: neither can hold a NUL) on one line,
        then the source."""
        header, _, source = payload.partition(b"\n")
        del payload
        if not self.configured:
            workspace, _, globals_dir = header[1:].decode().partition("\0")
            self.configure(workspace, globals_dir)
        _stream_stdio(header[:1] == b"1")
        _reserve.retake()
        status = _run_cell(source.decode("utf-8", errors="replace"), self.namespace)
        del source
        try:
            _display.save_open_figures()
            if self.globals_dir:
                _save_globals(self.namespace, self.globals_dir)
            _flush()
        except MemoryError:
            _reserve.release()
        if status:  # a turn that returns without a report ran the cell cleanly
            _host.call(_REPORT_STATUS + str(status).encode())


def _warm_up() -> None:
    """What the snapshot should already have done: every path a first cell or error takes."""
    builtins.help = _help  # type: ignore[assignment]
    scratch: dict[str, object] = {"__name__": "__main__", "__builtins__": builtins}
    # numpy and pandas too: a fresh interpreter would spend most of a second importing them.
    warm = (
        "x = 1\nx",
        "import sandbox_utils",
        "import numpy, pandas",
        "1 / 0",
        "(",
        "x.y",
        "frame = pandas.DataFrame({'a': [1.5]})\nframe",
        "frame.a",
        "numpy.arange(3)",
    )
    for source in warm:
        _run_cell(source, scratch)
    pickle.dumps({"warm": [1, 2.0, "three"]})
    _mark_generators()
    _flush()
    # Everything loaded so far goes to the collector's permanent generation: a collection in
    # one interpreter then never touches (and so never copies) the snapshot's pages.
    gc.freeze()


def _marker_words(generator: int) -> list[int]:
    """The state a generator is left in for the host to find (snapshot.py has the same)."""
    import random

    words = random.Random(f"llm-wasm-sandbox generator marker {generator}")
    return [words.getrandbits(32) for _ in range(_MT_WORDS)]


def _mark_generators() -> None:
    """Leave ``random``'s and ``numpy.random``'s global generators in marker states.

    The host finds them in the snapshot's memory and writes a whole state of OS entropy over
    each in every new interpreter, before its first turn. Reseeding them in the guest at the
    first turn touched ~850 pages of the snapshot, a third of what a first turn touched.
    """
    import random

    random.setstate((3, (*_marker_words(0), _MT_WORDS), None))
    sys.modules["numpy.random"].mtrand._rand._bit_generator.state = {
        "bit_generator": "MT19937",
        "state": {"key": _marker_words(1), "pos": _MT_WORDS},
    }


def _take_turns() -> None:
    """Make every later turn hand its bytes to the driver, not run them as a program.

    The reactor's C side keeps the function object ``_reactor.turn`` from its start, so the
    function keeps its identity and gets the code of ``turn`` below, which runs with the
    reactor module's globals: the first turn's set-up (its environment and the reseed of
    ``random`` and ``numpy.random``) stays the reactor's own, and the bytes go to the session.
    Returned is what the reactor's turn returns: 0 when the driver ran the cell (its status
    travels through the door), 1 when it could not take it.
    """
    import _reactor

    def turn(source: bytes | None, environ: object) -> tuple[int, object]:
        reactor = globals()  # running as _reactor.turn, these are the reactor module's globals
        try:
            if environ is not None:
                reactor["_sandbox_first_turn"](environ, reactor["_setup"])
            if source is None:  # the host found no memory for the cell
                return 1, reactor["_quit"]
            reactor["_sandbox_turn"](source)
            return 0, reactor["_quit"]
        except BaseException:
            return 1, reactor["_quit"]

    _BUILD_ENVIRONMENT.update(os.environ)
    _reactor._sandbox_turn = _session.run
    _reactor._sandbox_first_turn = _first_turn
    _reactor.turn.__code__ = turn.__code__
    _reactor._refresh = _reseeding(_reactor._refresh)


# The environment the snapshot was built with (the reactor applied it at the build's turn).
_BUILD_ENVIRONMENT: dict[str, str] = {}
_SNAPSHOT_QUITTER = "_setup.<locals>._SessionQuitter"


def _first_turn(environ: tuple[list[str], object], setup: Callable[[object], None]) -> None:
    """The reactor's first-turn set-up (``_reactor._setup``), minus what the snapshot holds.

    The reactor applies the instance's environment and argv, makes ``exit()``/``quit()`` end
    the turn (a class it builds), then reseeds (``_refresh``). An instance of our snapshot
    already has that class and instances from the build's turn, and the build's environment,
    which is a default sandbox's too; rebuilding them touched ~350 pages of the snapshot (each
    page touched is mapped, or copied, per interpreter), and the host has already seeded the
    generators (``_mark_generators``). So when both hold, only argv and logging's start time
    are set; otherwise the reactor's own set-up runs (and reseeds once more).
    """
    argv, env = environ
    same_environment = env is not None and dict(env) == _BUILD_ENVIRONMENT  # type: ignore[call-overload]
    if not same_environment or type(builtins.exit).__qualname__ != _SNAPSHOT_QUITTER:
        setup(environ)
        return
    arguments = list(argv or [])
    sys.path.extend(entry for entry in arguments[1:] if entry.startswith("/"))
    sys.argv = [""]
    sys.orig_argv = arguments[:1]
    # The rest of the reactor's _refresh(False): the generators are the host's to seed, and
    # with the build's environment and stdio, its other steps would redo what the build did.
    logging = sys.modules.get("logging")
    if logging is not None:
        import time

        logging._startTime = time.time()  # type: ignore[attr-defined]


def _reseeding(refresh: Callable[[bool], None]) -> Callable[[bool], None]:
    """The reactor's first-turn refresh, without its reseed of ``numpy.random``.

    The host has already given numpy's generator (and ``random``'s) a whole state of OS
    entropy before the first turn (``_mark_generators``); the reactor's
    ``numpy.random.seed()`` would derive another through a SeedSequence: ~0.5 ms and ~960
    pages of a fresh interpreter's first turn, for nothing. ``random`` and the rest stay the
    reactor's (this refresh runs only when the sandbox's environment differs from the build's).
    """

    def fresh(unbuffered: bool) -> None:
        numpy_random = sys.modules.pop("numpy.random", None)  # hidden from the reactor's reseed
        try:
            refresh(unbuffered)
        finally:
            if numpy_random is not None:
                sys.modules["numpy.random"] = numpy_random

    return fresh


_session = _Session()
_warm_up()
_take_turns()
