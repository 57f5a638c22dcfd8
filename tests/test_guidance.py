"""Error guidance and fuel analysis, fed with what real guests print when real code fails.

Every error type is provoked by running code in a real sandbox, and the result's own fields go
into error_guidance() the way Sandbox.execute wires them, so a change to the guest drivers'
error format breaks these tests instead of silently degrading the advice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sandbox import ExecutionPolicy, RuntimeType, Sandbox, SandboxResult, create_sandbox
from sandbox.core.fuel import fuel_analysis
from sandbox.core.guidance import error_guidance

Guidance = dict[str, object]

SPIN = {RuntimeType.PYTHON: "while True:\n    pass", RuntimeType.JAVASCRIPT: "for (;;) {}"}
SET_STATE = {RuntimeType.PYTHON: "kept = 1", RuntimeType.JAVASCRIPT: "var kept = 1"}
USE_STATE = {RuntimeType.PYTHON: "print(kept)", RuntimeType.JAVASCRIPT: "console.log(kept)"}
MEMORY_BOMB = {
    RuntimeType.PYTHON: "blocks = []\nwhile True:\n    blocks.append(bytearray(4 * 1024 * 1024))",
    RuntimeType.JAVASCRIPT: "var blocks = [];\nfor (;;) blocks.push(new Uint8Array(4 << 20));",
}
SLEEP = {
    RuntimeType.PYTHON: "import time\ntime.sleep(60)",
    RuntimeType.JAVASCRIPT: "os.sleep(60000)",
}
# Compiles an example inside the guest without running it.
COMPILE = {
    RuntimeType.PYTHON: "compile({source!r}, '<example>', 'exec')",
    RuntimeType.JAVASCRIPT: "new Function({source_json})",
}


class Session:
    """Runs cells and derives their guidance as Sandbox.execute will.

    A reset is reported on the call that caused it and on the next one, which is the call
    that finds its variables gone.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._reset_before = False

    def run(self, code: str, *, timeout_seconds: float | None = None) -> Guidance | None:
        self.result = self.sandbox.execute(code, timeout_seconds=timeout_seconds)
        reset_now = bool(self.result.metadata.get("session_reset"))
        guidance = guidance_for(self.sandbox, self.result, reset_now or self._reset_before)
        self._reset_before = reset_now
        return guidance

    def compiles(self, source: str) -> bool:
        check = COMPILE[self.sandbox.runtime].format(source=source, source_json=json.dumps(source))
        return self.sandbox.execute(check).success


def guidance_for(sandbox: Sandbox, result: SandboxResult, session_reset: bool) -> Guidance | None:
    meta = result.metadata
    return error_guidance(
        runtime=meta["runtime"],
        stderr=result.stderr,
        exit_code=result.exit_code,
        trap_reason=meta["trap_reason"],
        stdout_truncated=meta["stdout_truncated"],
        stderr_truncated=meta["stderr_truncated"],
        session_reset=session_reset,
        fuel_budget=meta["fuel_budget"],
        timeout_seconds=meta["timeout_seconds"],
        memory_limit_bytes=meta["memory_limit_bytes"],
        workspace_guest_path=sandbox.policy.guest_mount_path,
    )


def steps(guidance: Guidance | None) -> str:
    assert guidance is not None
    actions = guidance["actionable_guidance"]
    assert isinstance(actions, list) and actions
    assert all(isinstance(step, str) and step for step in actions)
    return "\n".join(actions)


def example(guidance: Guidance | None) -> str:
    assert guidance is not None
    text = guidance["example"]
    assert isinstance(text, str)
    return text


def host_policy(guidance: Guidance | None) -> ExecutionPolicy:
    """The host-side example must be a policy the real ExecutionPolicy accepts."""
    policy = eval(example(guidance), {"ExecutionPolicy": ExecutionPolicy})
    assert isinstance(policy, ExecutionPolicy)
    return policy


@pytest.fixture(scope="module")
def sessions() -> Iterator[dict[RuntimeType, Session]]:
    with (
        create_sandbox(RuntimeType.PYTHON) as python,
        create_sandbox(RuntimeType.JAVASCRIPT) as javascript,
    ):
        yield {RuntimeType.PYTHON: Session(python), RuntimeType.JAVASCRIPT: Session(javascript)}


@dataclass(frozen=True)
class Case:
    runtime: RuntimeType
    code: str
    error_type: str
    mentions: tuple[str, ...]
    line: int | None
    in_message: str = ""
    example_runs: bool = False  # the example must also run as-is, and again in the same session


PY, JS = RuntimeType.PYTHON, RuntimeType.JAVASCRIPT
CASES = [
    Case(PY, "open('/etc/passwd').read()", "PathOutsideWorkspace", ("/app", "'passwd'"), 1),
    Case(
        PY, "import os\n\nos.listdir('../..')", "PathOutsideWorkspace", ("write_session_file",), 3
    ),
    Case(PY, "open('missing.txt')", "RuntimeError", ("os.listdir('.')",), 1, "FileNotFoundError"),
    Case(
        PY,
        "import torch",
        "ModuleNotAvailable",
        ("standard library", "compiled code", "numpy"),
        1,
        "torch",
        example_runs=True,
    ),
    Case(
        PY,
        "import os\nimport no_such_package_xyz",
        "ModuleNotAvailable",
        ("list_available_packages()", "install_package(session_id"),
        2,
        "no_such_package_xyz",
    ),
    Case(PY, "import requests", "NetworkUnavailable", ("no network", "write_session_file"), 1),
    Case(
        PY,
        "import socket\nsocket.create_connection(('example.com', 80))",
        "NetworkUnavailable",
        ("no network",),
        2,
    ),
    Case(
        PY,
        "import subprocess\nsubprocess.run(['ls'])",
        "SubprocessUnavailable",
        ("os.listdir",),
        2,
        example_runs=True,
    ),
    Case(PY, "import os\nos.system('ls')", "SubprocessUnavailable", ("shell",), 2),
    Case(PY, "x = 1\nif x\n    print(x)", "SyntaxError", ("line 2", "`if x`", "Nothing"), 2),
    Case(PY, "```python\nprint(1)\n```", "SyntaxError", ("code fences",), 1),
    Case(
        PY,
        "def f(n):\n    return f(n + 1)\n\nf(0)",
        "RecursionError",
        ("loop", "setrecursionlimit"),
        2,
    ),
    Case(PY, "import sys\nsys.exit(3)", "GuestExit", ("sys.exit()", "raise"), None, "status 3"),
    Case(PY, "data = {'a': 1}\n\ndata['b']", "RuntimeError", ("d.get(",), 3, "KeyError: 'b'"),
    Case(PY, "total = 0\ncount = 0\ntotal / count", "RuntimeError", ("line 3",), 3, "ZeroDivision"),
    Case(PY, "undefined_name + 1", "RuntimeError", ("define or import",), 1, "NameError"),
    Case(JS, "readText('/etc/passwd')", "PathOutsideWorkspace", ("/app", "'passwd'"), 1),
    Case(JS, "var a = 1;\nwriteText('../out.txt', 'x')", "PathOutsideWorkspace", ("'out.txt'",), 2),
    Case(JS, "readText('missing.txt')", "RuntimeError", ("listDir()",), 1, "readText"),
    Case(JS, "await import('lodash')", "ModuleNotAvailable", ("npm",), None, "lodash"),
    Case(
        JS,
        "await import('std')",
        "ModuleNotAvailable",
        ("already a global",),
        None,
        example_runs=True,
    ),
    Case(JS, "await import('child_process')", "SubprocessUnavailable", ("listDir",), None),
    Case(JS, "await fetch('https://example.com')", "NetworkUnavailable", ("no network",), 1),
    Case(JS, "var ok = 1;\nvar broken = ;", "SyntaxError", ("line 2", "Nothing"), 2),
    Case(JS, "import fs from 'fs'", "SyntaxError", ("static import",), 1),
    Case(JS, "require('fs')", "NodeOnlyApi", ("readText", "writeJson"), 1, example_runs=True),
    Case(JS, "var home = process.env.HOME", "NodeOnlyApi", ("std.getenv",), 1, example_runs=True),
    Case(JS, "Buffer.from('hi')", "NodeOnlyApi", ("Uint8Array",), 1, example_runs=True),
    Case(JS, "module.exports = {}", "NodeOnlyApi", ("later cells",), 1),
    Case(JS, "var obj = null;\nobj.x", "RuntimeError", ("null", "exists(path)"), 2, "TypeError"),
    Case(JS, "function h() {\n  throw new Error('inner');\n}\nh()", "RuntimeError", (), 2),
    Case(JS, "JSON.parse('{bad')", "RuntimeError", ("not valid JSON",), 1, "SyntaxError"),
    Case(JS, "var n = 1;\nthrow new RangeError('n too big')", "RuntimeError", ("line 2",), 2),
    Case(JS, "throw 'plain'", "RuntimeError", ("new Error",), None, "Uncaught"),
]


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{case.runtime.value}-{case.code.splitlines()[0]}" for case in CASES]
)
def test_real_guest_error_gets_guidance(case: Case, sessions: dict[RuntimeType, Session]) -> None:
    session = sessions[case.runtime]
    guidance = session.run(case.code)
    assert not session.result.success
    assert guidance is not None, session.result.stderr
    assert guidance["error_type"] == case.error_type, (guidance, session.result.stderr)
    text = steps(guidance)
    for needle in case.mentions:
        assert needle in text, f"{needle!r} missing from {text}"
    assert guidance.get("line") == case.line
    message = guidance["message"]
    assert isinstance(message, str) and "\n" not in message and case.in_message in message
    assert "session was reset" not in text  # nothing here restarted the interpreter
    if "example" in guidance:
        assert session.compiles(example(guidance)), example(guidance)
    for _ in range(2 if case.example_runs else 0):
        assert session.sandbox.execute(example(guidance)).success, example(guidance)


def test_clean_success_needs_no_guidance(sessions: dict[RuntimeType, Session]) -> None:
    for session in sessions.values():
        assert session.run("1 + 1") is None
        assert session.result.success


def test_unknown_runtime_is_rejected() -> None:
    with pytest.raises(ValueError, match="runtime must be one of"):
        error_guidance(
            runtime="ruby",
            stderr="",
            exit_code=1,
            trap_reason=None,
            stdout_truncated=False,
            stderr_truncated=False,
            session_reset=False,
            fuel_budget=1,
            timeout_seconds=1.0,
            memory_limit_bytes=1,
            workspace_guest_path="/app",
        )


def test_out_of_fuel_then_lost_variables(runtime: RuntimeType) -> None:
    with create_sandbox(runtime, ExecutionPolicy(fuel_budget=200_000_000)) as sandbox:
        session = Session(sandbox)
        assert session.run(SET_STATE[runtime]) is None
        stopped = session.run(SPIN[runtime])
        assert stopped is not None and stopped["error_type"] == "OutOfFuel"
        text = steps(stopped)
        assert "ExecutionPolicy.fuel_budget above 200000000" in text
        assert "session was reset" in text
        assert host_policy(stopped).fuel_budget == 400_000_000

        lost = session.run(USE_STATE[runtime])
        assert lost is not None and lost["error_type"] == "NameError", session.result.stderr
        assert "'kept'" in str(lost["message"]) and lost["line"] == 1
        assert "Re-run the code that defines 'kept'" in steps(lost)
        assert session.compiles(example(lost))

        # Only the call right after a reset blames the reset: later, it is a plain NameError.
        later = session.run(USE_STATE[runtime])
        assert later is not None and later["error_type"] == "RuntimeError"


def test_persisted_session_explains_a_function_lost_to_a_reset() -> None:
    """With auto_persist_globals values come back after a reset, but functions never do."""
    policy = ExecutionPolicy(fuel_budget=200_000_000)
    with create_sandbox(RuntimeType.PYTHON, policy, auto_persist_globals=True) as sandbox:
        session = Session(sandbox)
        assert session.run("kept = 1\ndef helper():\n    return kept") is None
        assert session.run(SPIN[RuntimeType.PYTHON]) is not None
        guidance = session.run("print(kept)\nprint(helper())")
    assert session.result.stdout == "1\n"  # the value was restored, the function was not
    assert guidance is not None and guidance["error_type"] == "NameError"
    assert guidance["line"] == 2 and "'helper'" in str(guidance["message"])
    assert "auto_persist_globals" in steps(guidance)


def test_timeout(runtime: RuntimeType) -> None:
    with create_sandbox(runtime) as sandbox:
        guidance = Session(sandbox).run(SLEEP[runtime], timeout_seconds=0.5)
    assert guidance is not None and guidance["error_type"] == "Timeout"
    text = steps(guidance)
    assert "timeout_seconds=1" in text and "sleep" in text
    assert host_policy(guidance).timeout_seconds == 1.0


def test_memory_limit(runtime: RuntimeType) -> None:
    # Python's interpreter starts from a ~70 MiB snapshot; QuickJS needs a few MiB.
    limit = {RuntimeType.PYTHON: 128, RuntimeType.JAVASCRIPT: 32}[runtime] * 1024 * 1024
    with create_sandbox(runtime, ExecutionPolicy(memory_bytes=limit)) as sandbox:
        session = Session(sandbox)
        guidance = session.run(MEMORY_BOMB[runtime])
    assert guidance is not None and guidance["error_type"] == "MemoryLimit"
    assert f"ExecutionPolicy.memory_bytes above {limit}" in steps(guidance)
    assert guidance["line"] == {RuntimeType.PYTHON: 3, RuntimeType.JAVASCRIPT: 2}[runtime]
    assert host_policy(guidance).memory_bytes == 2 * limit


def test_javascript_stack_overflow_and_exit_reset_the_session() -> None:
    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
        session = Session(sandbox)
        overflow = session.run("function down(n) { return down(n + 1); }\ndown(0)")
        assert overflow is not None and overflow["error_type"] == "StackOverflow"
        assert "loop" in steps(overflow) and "session was reset" in steps(overflow)
        assert session.compiles(example(overflow))

        exited = session.run("std.exit(3)")
        assert exited is not None and exited["error_type"] == "GuestExit"
        assert "std.exit()" in steps(exited) and "status 3" in str(exited["message"])


def test_redeclared_const_needs_no_guidance_any_more() -> None:
    # Cells can be re-run (tests/test_js_rerun_cells.py): declaring a const again replaces it.
    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
        session = Session(sandbox)
        assert session.run("const limit = 1") is None
        assert session.run("const limit = 2") is None
        assert sandbox.execute("limit").stdout == "2\n"


def test_truncated_output_on_success(runtime: RuntimeType) -> None:
    flood = {
        RuntimeType.PYTHON: "print('a' * 5000)",
        RuntimeType.JAVASCRIPT: "console.log('a'.repeat(5000))",
    }
    with create_sandbox(runtime, ExecutionPolicy(stdout_max_bytes=1000)) as sandbox:
        session = Session(sandbox)
        guidance = session.run(flood[runtime])
        assert session.result.success
        assert guidance is not None and guidance["error_type"] == "OutputTruncated"
        assert "ExecutionPolicy.stdout_max_bytes" in steps(guidance)
        assert "stderr_max_bytes" not in steps(guidance)
        # The suggested pattern writes everything to a file and prints only a summary.
        assert session.run(example(guidance)) is None
        assert session.result.files_created == ["output.txt"]


def test_traceback_lost_to_truncated_stderr() -> None:
    policy = ExecutionPolicy(stderr_max_bytes=1000)
    with create_sandbox(RuntimeType.PYTHON, policy) as sandbox:
        guidance = Session(sandbox).run("import sys\nsys.stderr.write('e' * 5000)\n1 / 0")
    assert guidance is not None and guidance["error_type"] == "OutputTruncated"
    assert "ExecutionPolicy.stderr_max_bytes" in steps(guidance)


def test_error_with_truncated_stdout_keeps_the_error_and_notes_truncation() -> None:
    policy = ExecutionPolicy(stdout_max_bytes=1000)
    with create_sandbox(RuntimeType.PYTHON, policy) as sandbox:
        guidance = Session(sandbox).run("print('a' * 5000)\n1 / 0")
    assert guidance is not None and guidance["error_type"] == "RuntimeError"
    assert "ZeroDivisionError" in str(guidance["message"]) and guidance["line"] == 2
    assert "stdout exceeded its cap" in steps(guidance)


# --- fuel_analysis ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("consumed", "status", "percent"),
    [
        (0, "efficient", 0.0),
        (249, "efficient", 24.9),
        (250, "moderate", 25.0),
        (599, "moderate", 59.9),
        (600, "warning", 60.0),
        (849, "warning", 84.9),
        (850, "critical", 85.0),
        (999, "critical", 99.9),
        (1000, "exhausted", 100.0),
    ],
)
def test_fuel_status_thresholds(consumed: int, status: str, percent: float) -> None:
    analysis = fuel_analysis(consumed=consumed, budget=1000)
    assert analysis["status"] == status
    assert analysis["utilization_percent"] == percent
    assert analysis["consumed"] == consumed and analysis["budget"] == 1000
    needs_more = status in {"warning", "critical", "exhausted"}
    assert ("recommended_budget" in analysis) is needs_more
    if needs_more:
        recommended = analysis["recommended_budget"]
        assert isinstance(recommended, int) and recommended >= 2 * consumed


@pytest.mark.parametrize(
    ("consumed", "budget", "recommended"),
    [
        (123_456_789, 150_000_000, 250_000_000),
        (10_000_000_000, 10_000_000_000, 20_000_000_000),
        (9_990_000_001, 10_000_000_000, 20_000_000_000),
        (61, 100, 130),
    ],
)
def test_recommended_budget_is_twice_consumption_rounded_up(
    consumed: int, budget: int, recommended: int
) -> None:
    assert fuel_analysis(consumed=consumed, budget=budget)["recommended_budget"] == recommended


def test_utilization_is_rounded_to_one_decimal() -> None:
    assert fuel_analysis(consumed=1, budget=3)["utilization_percent"] == 33.3


def test_fuel_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="budget must be positive"):
        fuel_analysis(consumed=0, budget=0)


def test_fuel_analysis_of_real_calls() -> None:
    with create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(fuel_budget=200_000_000)) as sandbox:
        small = sandbox.execute("1 + 1")
        spin = sandbox.execute(SPIN[RuntimeType.PYTHON])
    light = fuel_analysis(consumed=small.fuel_consumed, budget=small.metadata["fuel_budget"])
    assert light["status"] == "efficient" and "recommended_budget" not in light
    heavy = fuel_analysis(consumed=spin.fuel_consumed, budget=spin.metadata["fuel_budget"])
    assert heavy["status"] == "exhausted" and heavy["utilization_percent"] == 100.0
    assert heavy["recommended_budget"] == 400_000_000


def test_results_carry_guidance_and_fuel_analysis() -> None:
    """Sandbox.execute puts both into metadata: guidance only when there is something to fix."""
    from sandbox import ExecutionPolicy

    with create_sandbox("python", ExecutionPolicy(fuel_budget=50_000_000)) as sandbox:
        ok = sandbox.execute("x = 1")
        assert "error_guidance" not in ok.metadata
        assert ok.metadata["fuel_analysis"]["status"] == "efficient"
        stopped = sandbox.execute("while True:\n    pass")
        assert stopped.metadata["error_guidance"]["error_type"] == "OutOfFuel"
        assert stopped.metadata["fuel_analysis"]["status"] == "exhausted"
        lost = sandbox.execute("print(x)")
        assert lost.metadata["error_guidance"]["error_type"] == "NameError"


def test_source_that_cannot_be_compiled_at_all_is_a_syntax_error() -> None:
    with create_sandbox("python") as sandbox:
        result = sandbox.execute("print(1)\x00")
    assert result.metadata["error_guidance"]["error_type"] == "SyntaxError"
