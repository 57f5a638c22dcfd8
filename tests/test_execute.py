"""The public API end to end: real guests in real wasmtime."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from sandbox import ExecutionPolicy, RuntimeType, Sandbox, SandboxClosedError, create_sandbox

HELLO = {
    RuntimeType.PYTHON: "print('hello from', 'python')",
    RuntimeType.JAVASCRIPT: "console.log('hello from', 'javascript')",
}


def test_hello_world_fills_every_result_field(runtime: RuntimeType) -> None:
    with create_sandbox(runtime) as sandbox:
        result = sandbox.execute(HELLO[runtime])
    assert result.success, result.stderr
    assert result.stdout == f"hello from {runtime.value}\n"
    assert result.stderr == ""
    assert result.exit_code == 0
    assert result.fuel_consumed > 0
    assert result.memory_used_bytes > 0
    assert result.duration_ms > 0
    assert result.workspace_path == str(sandbox.workspace_path)
    assert Path(result.workspace_path).is_dir()
    assert result.metadata["trap_reason"] is None
    assert result.metadata["stdout_truncated"] is False
    assert uuid.UUID(sandbox.session_id)


def test_runtime_type_values() -> None:
    assert [kind.value for kind in RuntimeType] == ["python", "javascript"]
    with pytest.raises(ValueError, match="allowed: 'python', 'javascript'"):
        create_sandbox("ruby")


def test_guest_error_is_a_result_with_user_frames_only(python_sandbox: Sandbox) -> None:
    result = python_sandbox.execute("x = 1\nraise ValueError('bad value')")
    assert not result.success
    assert result.exit_code == 1
    assert result.metadata["trap_reason"] is None
    assert 'File "<cell>", line 2' in result.stderr
    assert "ValueError: bad value" in result.stderr
    assert "guest_driver" not in result.stderr and "<string>" not in result.stderr


def test_javascript_error_is_a_result(js_sandbox: Sandbox) -> None:
    result = js_sandbox.execute("null.field")
    assert not result.success
    assert result.exit_code == 1
    assert "TypeError" in result.stderr


def test_sys_exit_code_is_reported(python_sandbox: Sandbox) -> None:
    result = python_sandbox.execute("import sys\nprint('bye')\nsys.exit(7)")
    assert result.exit_code == 7
    assert result.stdout == "bye\n"
    assert not result.success


def test_files_changed_without_new_data_are_seen(python_sandbox: Sandbox) -> None:
    """A rename, a deletion and a new mtime change no byte count, yet the next call must see
    the workspace as it is (the host skips its second scan only when the guest made no call
    that could change a file)."""
    assert python_sandbox.execute("open('a.txt', 'w').write('one')").files_created == ["a.txt"]
    assert python_sandbox.execute("print(open('a.txt').read())").files_modified == []
    assert python_sandbox.execute("import os; os.rename('a.txt', 'b.txt')").files_created == [
        "b.txt"
    ]
    touched = python_sandbox.execute("import os; os.utime('b.txt', ns=(1, 1))")
    assert touched.files_modified == ["b.txt"]
    assert python_sandbox.execute("import os; os.remove('b.txt')").files_modified == []
    recreated = python_sandbox.execute("open('b.txt', 'w').write('two')")
    assert recreated.files_created == ["b.txt"]


def test_files_created_and_modified(runtime: RuntimeType) -> None:
    write = {
        RuntimeType.PYTHON: "open('a.txt', 'w').write('one')",
        RuntimeType.JAVASCRIPT: "writeText('a.txt', 'one')",
    }
    rewrite = {
        RuntimeType.PYTHON: "open('a.txt', 'a').write('two'); import os; os.makedirs('d', exist_ok=True); open('d/b.txt','w').write('x')",
        RuntimeType.JAVASCRIPT: "appendText('a.txt', 'two'); makeDir('d'); writeText('d/b.txt', 'x')",
    }
    with create_sandbox(runtime) as sandbox:
        first = sandbox.execute(write[runtime])
        second = sandbox.execute(rewrite[runtime])
        assert (sandbox.workspace_path / "a.txt").read_text() == "onetwo"
    assert first.files_created == ["a.txt"]
    assert second.files_created == ["d/b.txt"]
    assert second.files_modified == ["a.txt"]
    assert second.metadata["files"] == [
        {"path": "d/b.txt", "size_bytes": 1, "change": "created"},
        {"path": "a.txt", "size_bytes": 6, "change": "modified"},
    ]


def test_javascript_file_helpers(js_sandbox: Sandbox) -> None:
    result = js_sandbox.execute(
        "writeJson('data.json', {a: [1, 2]});"
        "console.log(JSON.stringify(readJson('data.json')), exists('data.json'), exists('nope'));"
        "console.log(listDir().join(','));"
        "removeFile('data.json'); console.log(exists('data.json'));"
        "try { readText('missing.txt') } catch (e) { console.log(e.message) }"
    )
    assert result.success, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == '{"a":[1,2]} true false'
    assert lines[1] == "data.json"
    assert lines[2] == "false"
    assert lines[3].startswith('readText("missing.txt"): ')


def test_javascript_language_features(js_sandbox: Sandbox) -> None:
    result = js_sandbox.execute(
        "const xs = [3, 1, 2].toSorted(); class A { #p = 1; get p() { return this.#p } }\n"
        "console.error('to stderr');\n"
        "const v = await new Promise((resolve) => setTimeout(() => resolve(xs.at(-1)), 10));\n"
        "console.log(JSON.stringify({xs, p: new A().p, v, big: 2n ** 64n + ''}));"
    )
    assert result.success, result.stderr
    assert result.stdout == '{"xs":[1,2,3],"p":1,"v":3,"big":"18446744073709551616"}\n'
    assert "to stderr" in result.stderr


def test_python_cell_echoes_last_expression(python_sandbox: Sandbox) -> None:
    assert python_sandbox.execute("x = 6\nx * 7").stdout == "42\n"
    assert python_sandbox.execute("print('once')").stdout == "once\n"  # None is not echoed


def test_parallel_sandboxes_in_threads() -> None:
    results: dict[int, str] = {}

    def work(index: int) -> None:
        with create_sandbox(RuntimeType.PYTHON) as sandbox:
            results[index] = sandbox.execute(f"print(sum(range({index} * 1000)))").stdout

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {index: f"{sum(range(index * 1000))}\n" for index in range(4)}


def test_closed_sandbox_refuses_execute() -> None:
    sandbox = create_sandbox(RuntimeType.JAVASCRIPT)
    sandbox.close()
    with pytest.raises(SandboxClosedError, match="closed"):
        sandbox.execute("1")


def test_execute_rejects_bad_arguments(python_sandbox: Sandbox) -> None:
    with pytest.raises(TypeError, match="code must be a str"):
        python_sandbox.execute(b"print(1)")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout_seconds"):
        python_sandbox.execute("1", timeout_seconds=0)


def test_reopen_session_keeps_files(runtime: RuntimeType) -> None:
    with create_sandbox(runtime) as first:
        (first.workspace_path / "kept.txt").write_text("still here")
        session_id = first.session_id
    read = {
        RuntimeType.PYTHON: "print(open('kept.txt').read())",
        RuntimeType.JAVASCRIPT: "console.log(readText('kept.txt'))",
    }
    with create_sandbox(runtime, session_id=session_id) as again:
        assert again.workspace_path == first.workspace_path
        assert again.execute(read[runtime]).stdout == "still here\n"


def test_custom_guest_mount_path() -> None:
    with create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(guest_mount_path="/work")) as sandbox:
        result = sandbox.execute("import os; print(os.getcwd()); _ = open('f', 'w').write('1')")
    assert result.stdout == "/work\n"
    assert result.files_created == ["f"]


def test_sessions_are_listed_with_metadata() -> None:
    from sandbox import list_sessions, read_session_file, write_session_file

    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
        write_session_file(sandbox.session_id, "in.txt", "from host")
        result = sandbox.execute("writeText('out.txt', readText('in.txt').toUpperCase())")
        assert result.success, result.stderr
        assert read_session_file(sandbox.session_id, "out.txt") == b"FROM HOST"
    info = {info.session_id: info for info in list_sessions()}[sandbox.session_id]
    assert (info.runtime, info.executions, info.file_count) == ("javascript", 1, 2)


def test_execution_count_is_saved_on_close() -> None:
    from sandbox import list_sessions

    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
        for _ in range(5):
            sandbox.execute("1")
    counts = {info.session_id: info.executions for info in list_sessions()}
    assert counts[sandbox.session_id] == 5


def test_preserve_logs_keeps_every_call_out_of_guest_reach() -> None:
    from sandbox.sessions import logs

    with create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(preserve_logs=True)) as sandbox:
        sandbox.execute("print('first')")
        sandbox.execute("1/0")
        listing = sandbox.execute("import os; print(os.listdir('.'))")
    entries = logs.read(sandbox.workspace_path.parent)
    assert [entry["code"] for entry in entries][:2] == ["print('first')", "1/0"]
    assert entries[0]["result"]["stdout"] == "first\n"  # type: ignore[index]
    assert entries[1]["result"]["success"] is False  # type: ignore[index]
    assert listing.stdout == "[]\n"


def test_async_execute() -> None:
    import asyncio

    async def main() -> list[str]:
        boxes = [create_sandbox(RuntimeType.JAVASCRIPT) for _ in range(3)]
        results = await asyncio.gather(
            *(box.aexecute(f"console.log({index} * 2)") for index, box in enumerate(boxes))
        )
        for box in boxes:
            box.close()
        return [result.stdout for result in results]

    assert asyncio.run(main()) == ["0\n", "2\n", "4\n"]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("x = 6\nx * 7", "42\n"),
        ("x = 6; x * 7", "42\n"),
        ("x = [\n  1,\n  2,\n]\nlen(\n  x\n)", "2\n"),
        ("'é' + 'x'  # a comment", "'éx'\n"),
        ("é = 5; é + 1;", "6\n"),
        ("if True:\n    y = 3\ny", "3\n"),
        ("print('once')", "once\n"),
        ("x = 1", ""),
        # The forms the text-first compile (guest_driver._compile_cell) must tell apart.
        ("lambda: 1", "<lambda>"),
        ("x: int = 3\nx", "3\n"),
        ("x: int = 3", ""),
        ("for i in range(2):\n    i", ""),
        ("x = 1\nif x:\n    7", ""),
        ('s = """\nline\n"""\ns', "'\\nline\\n'\n"),
        ("print(\n    'multi')", "multi\n"),
        ("total = (1 +\n2)\ntotal", "3\n"),
        ("del_ = 3\ndel_ + 1", "4\n"),
        ("type(3)", "<class 'int'>\n"),
        ("@staticmethod\ndef g():\n    pass\n1", "1\n"),
        ("x = [\n1,\n]\nx", "[1]\n"),
    ],
)
def test_python_echo_rule_cases(python_sandbox: Sandbox, cell: str, expected: str) -> None:
    result = python_sandbox.execute(cell)
    assert result.success, result.stderr
    if expected == "<lambda>":
        assert result.stdout.startswith("<function <lambda> at ")
    else:
        assert result.stdout == expected


def test_python_traceback_lines_in_an_echoed_expression(python_sandbox: Sandbox) -> None:
    result = python_sandbox.execute("a = 1\nb = 0\n\na / b")
    assert 'File "<cell>", line 4' in result.stderr
    assert "ZeroDivisionError" in result.stderr
    spread = python_sandbox.execute("a = 1\nprint(\n    a / 0\n)")
    assert 'File "<cell>", line 3' in spread.stderr
    broken = python_sandbox.execute("x = 1\n)")
    assert 'File "<cell>", line 2' in broken.stderr and "SyntaxError" in broken.stderr


def test_help_works_in_the_python_guest(python_sandbox: Sandbox) -> None:
    result = python_sandbox.execute("help(len)")
    assert result.success, result.stderr
    assert "Return the number of items in a container" in result.stdout


def test_process_exit_leaves_no_control_directories(tmp_path: Path) -> None:
    """Guests still parked at interpreter exit remove their temporary control directories."""
    import os
    import subprocess
    import sys

    script = (
        "from sandbox import create_sandbox\n"
        "kept = [create_sandbox(kind) for kind in ('python', 'javascript')]\n"
        "for box in kept:\n"
        "    box.execute('1')\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.glob("llm-wasm-sandbox-control-*")) == []


def test_create_sandbox_rejects_a_policy_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="policy must be an ExecutionPolicy"):
        create_sandbox(RuntimeType.PYTHON, policy={"timeout_seconds": 1})  # type: ignore[arg-type]


def test_first_turn_is_the_same_whatever_the_environment() -> None:
    """A default sandbox's first turn skips the set-up its snapshot already holds; one with
    its own environment runs the reactor's. Guests must not be able to tell them apart."""
    probe = (
        "import os, sys, random\n"
        "print(sys.argv, sys.orig_argv, type(exit).__name__, repr(quit))\n"
        "print(sorted(k for k in os.environ if k != 'EXTRA'), 0 <= random.random() < 1)\n"
        "exit(4)"
    )
    seen = []
    for policy in (ExecutionPolicy(), ExecutionPolicy(env={"EXTRA": "1"})):
        with create_sandbox(RuntimeType.PYTHON, policy) as sandbox:
            result = sandbox.execute(probe)
            seen.append((result.stdout, result.exit_code, sandbox.execute("print(2)").stdout))
    assert seen[0] == seen[1]
    assert seen[0][0].splitlines()[1] == "['MPLBACKEND'] True"
