"""The driver that runs *inside* the WebAssembly CPython, never on the host.

It keeps one namespace alive across cells: wait for the host (the hypercall), read the cell,
run it, report its status with the next hypercall. argv: hypercall seconds, cell file,
workspace directory.
"""

import ast
import builtins
import contextlib
import linecache
import os
import sys
import time
import traceback

_STATUS_MEMORY_ERROR = 0x100
_CELL = "<cell>"


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _report(error: BaseException) -> None:
    """Print the traceback from the user's first frame on: our driver frames are noise."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != _CELL:
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb)


def _run_cell(source: str, namespace: dict[str, object]) -> int:
    lines = source.splitlines(keepends=True)
    linecache.cache[_CELL] = (len(source), None, lines, _CELL)
    try:
        tree = ast.parse(source, _CELL)
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        if last is not None:
            tree.body.pop()
        exec(compile(tree, _CELL, "exec"), namespace)
        if last is not None:
            # REPL rule: a cell ending in an expression prints its repr unless it is None.
            value = eval(compile(ast.Expression(last.value), _CELL, "eval"), namespace)
            if value is not None:
                print(repr(value))
        return 0
    except SystemExit as exit_request:
        return _exit_status(exit_request.code)
    except MemoryError as error:
        _report(error)
        return _STATUS_MEMORY_ERROR | 1
    except BaseException as error:
        _report(error)
        return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the cell may have replaced or closed a stream
            stream.flush()


def _main() -> None:
    hypercall_seconds = int(sys.argv[1])
    cell_path = sys.argv[2]
    os.chdir(sys.argv[3])
    del sys.argv[1:]
    sleep = time.sleep  # held here so a cell that patches time.sleep cannot break the loop
    namespace: dict[str, object] = {"__name__": "__main__", "__builtins__": builtins}
    _run_cell("pass", {})  # warm the compile/exec paths while the host is not waiting
    status = 0
    while True:
        sleep(hypercall_seconds + status)
        with open(cell_path, encoding="utf-8") as cell:
            source = cell.read()
        status = _run_cell(source, namespace)
        _flush()


if __name__ == "__main__":
    _main()
