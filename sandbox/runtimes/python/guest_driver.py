"""The driver that runs *inside* the WebAssembly CPython, never on the host.

It keeps one namespace alive across cells: wait for the host (the hypercall), read the cell,
run it, report its status with the next hypercall. argv: the hypercall as
"base_ms:token:status_range", cell file, workspace directory, globals directory ("" when
globals are not persisted). argv is erased before any cell runs.

With a globals directory, the namespace is saved after every cell (picklable values, plus
imported modules by name) and restored at boot, so a new process or a reset interpreter picks
up where the last completed cell left off. What could not be saved is listed in report.json.
"""

# Imported at boot, so that no cell pays for them out of its fuel budget. That includes `ast`
# (50 ms of CPython-on-WASI boot) even though cells are parsed with `_ast`: traceback imports it
# to place its carets, and a cell's first error must not turn into OutOfFuel.
import _ast
import ast  # noqa: F401
import builtins
import importlib
import importlib.machinery
import linecache
import os
import select
import sys
import traceback
import types

_STATUS_MEMORY_ERROR = 0x100
# The interpreter is too full to take another cell: the host replaces it.
_STATUS_DRIVER_OUT_OF_MEMORY = 0x200
# Freed when a cell dies of MemoryError, so the driver can still report it and take the next
# cell while the cell's data fills the interpreter; taken again once memory allows.
_RESERVE_BYTES = 2 << 20
_CELL = "<cell>"


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _report(error: BaseException, lines: list[str]) -> None:
    """Print the traceback from the user's first frame on: our driver frames are noise."""
    linecache.cache[_CELL] = (sum(map(len, lines)), None, lines, _CELL)
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != _CELL:
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb)


def _text(lines: list[str], line: int, column: int, end_line: int, end_column: int) -> str:
    """Source between two AST positions (1-based lines, UTF-8 byte columns)."""
    selected = [text.encode("utf-8") for text in lines[line - 1 : end_line]]
    selected[-1] = selected[-1][:end_column]
    selected[0] = selected[0][column:]
    return b"".join(selected).decode("utf-8", errors="replace")


def _compile_cell(source: str, lines: list[str]) -> tuple[types.CodeType, types.CodeType | None]:
    """The cell's code, and its trailing expression's code when it ends in one (to echo).

    Both are compiled from source text, which is faster than compiling an edited AST; leading
    newlines keep the expression's line numbers right in tracebacks.
    """
    tree = compile(source, _CELL, "exec", _ast.PyCF_ONLY_AST)
    assert isinstance(tree, _ast.Module)
    last = tree.body[-1] if tree.body else None
    if not isinstance(last, _ast.Expr):
        return compile(source, _CELL, "exec"), None
    head = "".join(lines[: last.lineno - 1]) + _text(
        lines, last.lineno, 0, last.lineno, last.col_offset
    )
    value = last.value
    assert value.end_lineno is not None and value.end_col_offset is not None
    expression = _text(
        lines, value.lineno, value.col_offset, value.end_lineno, value.end_col_offset
    )
    return (
        compile(head, _CELL, "exec"),
        compile("\n" * (last.lineno - 1) + "(" + expression + ")", _CELL, "eval"),
    )


def _run_cell(source: str, namespace: dict[str, object]) -> int:
    lines = source.splitlines(keepends=True)
    try:
        body, echo = _compile_cell(source, lines)
        exec(body, namespace)
        if echo is not None:
            # REPL rule: a cell ending in an expression prints its repr unless it is None.
            value = eval(echo, namespace)
            if value is not None:
                print(repr(value))
        return 0
    except SystemExit as exit_request:
        return _exit_status(exit_request.code)
    except MemoryError as error:
        _reserve.release()
        _report(error, lines)
        return _STATUS_MEMORY_ERROR | 1
    except BaseException as error:
        _report(error, lines)
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


_CELL_CHUNK = 1 << 16  # small, so a nearly full interpreter can still read a short cell


def _read_cell(fd: int) -> bytes:
    """The whole cell file in as few WASI calls as possible (one, for cells under 64 KiB)."""
    chunks = [os.pread(fd, _CELL_CHUNK, 0)]
    while len(chunks[-1]) == _CELL_CHUNK:
        chunks.append(os.pread(fd, _CELL_CHUNK, _CELL_CHUNK * len(chunks)))
    return b"".join(chunks)


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


class _Reserve:
    def __init__(self) -> None:
        self._block: bytearray | None = bytearray(_RESERVE_BYTES)

    def release(self) -> None:
        self._block = None

    def retake(self) -> None:
        """Take the reserve back only if as much again stays free for reading the next cell."""
        if self._block is None:
            try:
                bytearray(2 * _RESERVE_BYTES)
                self._block = bytearray(_RESERVE_BYTES)
            except MemoryError:
                pass  # still full: the next cell runs without it


_reserve = _Reserve()


def _help(*topic: object) -> None:
    """help() as in the REPL (``-S`` skips site, which normally installs it)."""
    import pydoc

    pydoc.help(*topic)


def _main() -> None:
    base_ms, token, status_range = map(int, sys.argv[1].split(":"))
    hypercall_ms = base_ms + token * status_range
    cell_path = sys.argv[2]
    os.chdir(sys.argv[3])
    globals_dir = sys.argv[4]
    del sys.argv[1:]
    del sys.orig_argv[1:]
    # The hypercall waits in select(), whose timeout reaches the host as an exact relative
    # sleep (time.sleep would pass an absolute deadline, blurred by the clocks' offset). Held
    # here so a cell that patches select cannot break the loop.
    wait = select.select
    builtins.help = _help  # type: ignore[assignment]
    namespace: dict[str, object] = {"__name__": "__main__", "__builtins__": builtins}
    if globals_dir:
        import json  # noqa: F401 - loaded now so that saving never spends a cell's fuel
        import pickle  # noqa: F401

        _restore_globals(namespace, globals_dir)
    _run_cell("pass", {})  # warm the compile/exec paths while the host is not waiting
    sys.meta_path.append(_SessionPackages(os.path.join(os.getcwd(), ".sandbox-packages")))
    status = 0
    cell = os.open(cell_path, os.O_RDONLY)  # open for the driver's whole life
    while True:
        wait([], [], [], (hypercall_ms + status) / 1000)
        try:
            source = _read_cell(cell).decode("utf-8", errors="replace")
        except MemoryError:
            status = _STATUS_DRIVER_OUT_OF_MEMORY | _STATUS_MEMORY_ERROR | 1
            continue
        _reserve.retake()  # after the read, which may need the room a MemoryError freed
        status = _run_cell(source, namespace)
        del source
        try:
            if globals_dir:
                _save_globals(namespace, globals_dir)
            _flush()
        except MemoryError:
            _reserve.release()


if __name__ == "__main__":
    _main()
