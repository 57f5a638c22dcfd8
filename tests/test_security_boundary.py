"""The boundary between cells: guest code cannot end its cell early or answer for the next one.

A live interpreter waits for its next cell in a hypercall (a sleep of a special length). The
first version used one fixed length for every interpreter, so a cell could sleep that length,
make the host believe the cell had ended, then read the next cell's source and print whatever
it liked in its place. Now each interpreter's hypercall carries a secret token.
"""

from __future__ import annotations

import pytest

from sandbox import ExecutionPolicy, RuntimeType, TrapReason, create_sandbox
from sandbox.host import poll

_FORGERIES = {
    RuntimeType.PYTHON: (
        "import time\ntime.sleep({ms} / 1000)\nprint(open('/.sandbox/cell.py').read())\n"
    ),
    RuntimeType.JAVASCRIPT: ("os.sleep({ms});\nconsole.log(std.loadFile('/.sandbox/cell.js'));\n"),
}
# The first protocol's fixed hypercall, and the current one with guessed tokens.
_GUESSES = [3_141_592_653_000, poll.HYPERCALL_BASE_MS, poll.HYPERCALL_BASE_MS + 7 * 512]


@pytest.mark.parametrize("ms", _GUESSES, ids=["old-magic", "token-0", "token-7"])
def test_forged_hypercall_is_only_a_long_sleep(runtime: RuntimeType, ms: int) -> None:
    policy = ExecutionPolicy(timeout_seconds=1)
    with create_sandbox(runtime, policy) as sandbox:
        forged = sandbox.execute(_FORGERIES[runtime].format(ms=ms))
        assert forged.metadata["trap_reason"] == TrapReason.TIMEOUT.value
        assert not forged.success
        # The next cells are the user's own and run as written, not answered by the forger.
        after = {
            RuntimeType.PYTHON: "print('user code ran', 6 * 7)",
            RuntimeType.JAVASCRIPT: "console.log('user code ran', 6 * 7)",
        }[runtime]
        for _ in range(2):
            result = sandbox.execute(after)
            assert result.success and result.stdout == "user code ran 42\n"


def test_javascript_cells_cannot_see_the_token() -> None:
    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
        result = sandbox.execute(
            "console.log(JSON.stringify(scriptArgs), typeof hypercallMs, typeof token)"
        )
        assert result.stdout == "[] undefined undefined\n"


def test_python_argv_is_erased() -> None:
    with create_sandbox(RuntimeType.PYTHON) as sandbox:
        result = sandbox.execute("import sys\nprint(sys.argv[1:], sys.orig_argv[1:])")
        assert result.stdout == "[] []\n"


def test_interpreters_draw_different_tokens() -> None:
    with (
        create_sandbox(RuntimeType.JAVASCRIPT) as first,
        create_sandbox(RuntimeType.JAVASCRIPT) as second,
    ):
        assert first._guest is not None and second._guest is not None
        assert first._guest._hypercall_token != second._guest._hypercall_token
