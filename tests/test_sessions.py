"""Live sessions: state across calls, eviction, and limits on live interpreters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import (
    ExecutionPolicy,
    RuntimeType,
    configure_sessions,
    create_sandbox,
    evict_idle_sessions,
)

DEFINE = {
    RuntimeType.PYTHON: "import math\ndef area(r):\n    return math.pi * r * r\nclass Box:\n    size = 3\nn = 1",
    RuntimeType.JAVASCRIPT: "function area(r) { return Math.PI * r * r }\nclass Box { static size = 3 }\nlet n = 1",
}
USE = {
    RuntimeType.PYTHON: "n += 1\nprint(round(area(2), 2), Box.size, n)",
    RuntimeType.JAVASCRIPT: "n += 1; console.log(area(2).toFixed(2), Box.size, n)",
}


@pytest.fixture
def session_limits() -> Iterator[None]:
    yield
    configure_sessions(idle_timeout_seconds=None, max_live_sessions=None)


def test_state_persists_across_calls(runtime: RuntimeType) -> None:
    with create_sandbox(runtime) as sandbox:
        assert sandbox.execute(DEFINE[runtime]).success
        assert sandbox.execute(USE[runtime]).stdout == "12.57 3 2\n"
        assert sandbox.execute(USE[runtime]).stdout == "12.57 3 3\n"


def test_evicted_python_interpreters_resume_their_state(session_limits: None) -> None:
    with create_sandbox(RuntimeType.PYTHON) as sandbox:
        sandbox.execute(DEFINE[RuntimeType.PYTHON] + "\nimport numpy as np\narr = np.arange(4)")
        assert evict_idle_sessions(0) >= 1
        result = sandbox.execute(USE[RuntimeType.PYTHON] + "\nprint(arr.sum())")
        assert result.stdout == "12.57 3 2\n6\n", result.stderr
        assert "session_reset" not in result.metadata
        assert result.metadata["state_restored"] == "evicted_idle"


def test_idle_sandboxes_are_evicted_and_reboot(runtime: RuntimeType, session_limits: None) -> None:
    policy = ExecutionPolicy(keep_interpreter_state=False)
    with create_sandbox(runtime, policy) as sandbox:
        sandbox.execute(DEFINE[runtime])
        (sandbox.workspace_path / "kept.txt").write_text("files survive")
        assert evict_idle_sessions(0) >= 1
        result = sandbox.execute(USE[runtime])
        assert result.metadata["session_reset"] is True
        assert result.metadata["session_reset_reason"] == "evicted_idle"
        assert not result.success  # the definitions are gone
        read = {
            RuntimeType.PYTHON: "print(open('kept.txt').read())",
            RuntimeType.JAVASCRIPT: "console.log(readText('kept.txt'))",
        }
        follow_up = sandbox.execute(read[runtime])
        assert follow_up.stdout == "files survive\n"
        assert "session_reset" not in follow_up.metadata


def test_max_live_sessions_evicts_least_recently_used(session_limits: None) -> None:
    evict_idle_sessions(0)  # live interpreters left by other tests must not count
    configure_sessions(max_live_sessions=2)
    boxes = [create_sandbox(RuntimeType.JAVASCRIPT) for _ in range(3)]
    try:
        for index, box in enumerate(boxes):
            box.execute(f"var mine = {index}")
        first = boxes[0].execute("console.log(typeof mine)")
        assert first.metadata["session_reset_reason"] == "evicted_max_live_sessions"
        assert first.stdout == "undefined\n"
        assert boxes[2].execute("console.log(mine)").stdout == "2\n"
    finally:
        for box in boxes:
            box.close()


def test_session_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_live_sessions"):
        configure_sessions(max_live_sessions=0)
    with pytest.raises(ValueError, match="idle_timeout_seconds"):
        configure_sessions(idle_timeout_seconds=-1)


PERSIST_SETUP = {
    RuntimeType.PYTHON: (
        "import json as j\nrows = [{'a': 1}]\ntotal = 41\nhandle = open('f.txt', 'w')\n"
        "def helper():\n    return 1"
    ),
    RuntimeType.JAVASCRIPT: "var rows = [{a: 1}]; var total = 41; function helper() { return 1 }",
}
PERSIST_CHECK = {
    RuntimeType.PYTHON: ("print(j.dumps(rows), total + 1)", '[{"a": 1}] 42\n'),
    RuntimeType.JAVASCRIPT: ("console.log(JSON.stringify(rows), total + 1)", '[{"a":1}] 42\n'),
}


def _persist_in_new_process(runtime: RuntimeType, session_id: str) -> str:
    import os
    import subprocess
    import sys

    script = (
        "import sys\nfrom sandbox import create_sandbox\n"
        "with create_sandbox(sys.argv[1], session_id=sys.argv[2], auto_persist_globals=True) as sb:\n"
        "    print(sb.execute(sys.argv[3]).stdout, end='')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, runtime.value, session_id, PERSIST_CHECK[runtime][0]],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_auto_persist_globals_across_processes(runtime: RuntimeType) -> None:
    with create_sandbox(runtime, auto_persist_globals=True) as sandbox:
        result = sandbox.execute(PERSIST_SETUP[runtime])
        assert result.success, result.stderr
        assert {"rows", "total"} <= set(result.metadata["persisted_globals"])
        assert "helper" in result.metadata["unsaved_globals"]
        assert "definitions" in result.metadata["unsaved_globals"]["helper"]
        assert not any(".sandbox-state" in path for path in result.files_created)
        session_id = sandbox.session_id
    assert _persist_in_new_process(runtime, session_id) == PERSIST_CHECK[runtime][1]


def test_persisted_globals_survive_a_limit_reset() -> None:
    from sandbox import ExecutionPolicy

    policy = ExecutionPolicy(fuel_budget=100_000_000)
    with create_sandbox(RuntimeType.PYTHON, policy, auto_persist_globals=True) as sandbox:
        sandbox.execute("data = {'kept': True}")
        stopped = sandbox.execute("while True:\n    pass")
        assert stopped.metadata["session_reset"] is True
        assert sandbox.execute("print(data)").stdout == "{'kept': True}\n"


def test_unpicklable_python_values_are_reported() -> None:
    with create_sandbox(RuntimeType.PYTHON, auto_persist_globals=True) as sandbox:
        result = sandbox.execute("handle = open('x.txt', 'w')\nn = 1")
    assert "cannot be pickled" in result.metadata["unsaved_globals"]["handle"]
    assert "n" in result.metadata["persisted_globals"]


def test_calls_to_one_session_are_serialised() -> None:
    """Two threads on one sandbox: the guest-side intervals of their calls never overlap."""
    import threading

    cell = "import time\nstart = time.monotonic()\ntime.sleep(0.2)\nprint(start, time.monotonic())"
    spans: list[tuple[float, float]] = []
    with create_sandbox(RuntimeType.PYTHON) as sandbox:

        def call() -> None:
            start, end = map(float, sandbox.execute(cell).stdout.split())
            spans.append((start, end))

        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    first, second = sorted(spans)
    assert first[1] <= second[0]


def test_unclosed_sandboxes_leave_the_registry_when_collected() -> None:
    import gc

    from sandbox.sessions.registry import LIVE_SESSIONS

    gc.collect()  # sandboxes other tests dropped without close() must not count
    before = LIVE_SESSIONS.live_count()
    sandbox = create_sandbox(RuntimeType.JAVASCRIPT)
    sandbox.execute("1")
    assert LIVE_SESSIONS.live_count() == before + 1
    del sandbox
    gc.collect()
    assert LIVE_SESSIONS.live_count() == before


def test_session_json_counts_every_execution_soon_after_it() -> None:
    import json
    import time

    from sandbox import list_sessions
    from sandbox.sessions.metadata import FLUSH_SECONDS

    with create_sandbox(RuntimeType.PYTHON) as sandbox:
        sandbox.execute("1")
        sandbox.execute("2")
        listed = [s for s in list_sessions() if s.session_id == sandbox.session_id]
        assert listed[0].executions == 2  # exact in this process at once
        record = sandbox.workspace_path.parent / "session.json"
        deadline = time.monotonic() + 20 * FLUSH_SECONDS
        while json.loads(record.read_text())["executions"] != 2:
            assert time.monotonic() < deadline, "session.json never counted the calls"
            time.sleep(FLUSH_SECONDS / 10)  # polling a file another thread writes


def test_a_process_that_exits_at_once_still_writes_its_counts(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    script = (
        "from sandbox import create_sandbox\n"
        "sandbox = create_sandbox('python', session_id='counted')\n"
        "sandbox.execute('1'); sandbox.execute('2'); sandbox.execute('3')\n"
        "sandbox.close()\n"
    )
    environment = {**os.environ, "LLM_WASM_SANDBOX_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=environment, timeout=120)
    assert done.returncode == 0
    record = next(tmp_path.rglob("counted/session.json"))
    assert json.loads(record.read_text())["executions"] == 3
