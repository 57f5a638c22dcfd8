"""The llm-wasm-sandbox command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "sandbox"]


def _run(
    *args: str, stdin: str | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = os.environ.copy()
    if home is not None:
        env["LLM_WASM_SANDBOX_HOME"] = str(home)
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_one_shot_run_leaves_nothing_behind(tmp_path: Path) -> None:
    done = _run("run", "-c", "open('out.txt', 'w').write('x')", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "sessions").iterdir()) == []


def test_run_with_a_session_keeps_its_workspace(tmp_path: Path) -> None:
    assert _run("run", "--session", "keep", "-c", "open('a', 'w').write('1')", home=tmp_path)
    again = _run("run", "--session", "keep", "-c", "print(open('a').read())", home=tmp_path)
    assert again.stdout == "1\n"
    assert [p.name for p in (tmp_path / "sessions").iterdir()] == ["keep"]


def test_run_code_prints_output_and_exit_code() -> None:
    done = _run("run", "-c", "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(4)")
    assert done.stdout == "out\n"
    assert "err" in done.stderr
    assert done.returncode == 4


def test_run_javascript_file(tmp_path: Path) -> None:
    script = tmp_path / "hello.js"
    script.write_text("console.log([1, 2, 3].map((x) => x * 2).join(' '))")
    done = _run("run", "--lang", "javascript", str(script))
    assert done.stdout == "2 4 6\n"
    assert done.returncode == 0


def test_run_json_output_and_stdin() -> None:
    done = _run("run", "--json", "-", stdin="print(1 + 1)")
    result = json.loads(done.stdout)
    assert result["stdout"] == "2\n"
    assert result["success"] is True
    assert result["metadata"]["runtime"] == "python"


def test_run_limits_from_flags() -> None:
    done = _run("run", "--timeout", "0.5", "-c", "import time\ntime.sleep(10)")
    assert done.returncode == 128
    assert "stopped: timeout" in done.stderr


def test_bad_arguments_are_explained(tmp_path: Path) -> None:
    done = _run("run", "--memory", "1", "-c", "1")
    assert done.returncode == 2
    assert "memory_bytes" in done.stderr
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": "a", "code": "1"}\n')
    done = _run("batch", str(items), "-o", str(tmp_path / "out.jsonl"), "--memory", "1")
    assert done.returncode == 2 and "memory_bytes" in done.stderr  # the same rule for batch
    assert not (tmp_path / "out.jsonl").exists()
    done = _run("run")
    assert "exactly one of FILE or -c CODE" in done.stderr


def test_mcp_command_refuses_an_open_bind_without_a_token() -> None:
    done = _run("mcp", "--transport", "http", "--host", "0.0.0.0", "--port", "18999")
    assert done.returncode == 2
    assert "token" in done.stderr.lower()


def test_mcp_command_validates_its_rate_limit_flags() -> None:
    done = _run("mcp", "--burst-calls", "0")
    assert done.returncode == 2
    assert "invalid limits" in done.stderr and "burst_calls" in done.stderr


def test_bad_session_id_is_a_clean_usage_error() -> None:
    done = _run("run", "--session", "../escape", "-c", "1")
    assert done.returncode == 2
    assert "invalid session id" in done.stderr
    assert "Traceback" not in done.stderr


def test_prepare_compiles_ahead_and_cache_clear_empties(tmp_path: Path) -> None:
    env_cache = {"LLM_WASM_SANDBOX_CACHE_DIR": str(tmp_path / "cache")}
    prepared = subprocess.run(
        [*CLI, "prepare", "--lang", "javascript"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env_cache},
    )
    assert prepared.returncode == 0, prepared.stderr
    assert "ready: javascript" in prepared.stdout
    assert "compiling the javascript runtime" in prepared.stderr  # the progress line
    listed = subprocess.run(
        [*CLI, "cache"], capture_output=True, text=True, timeout=60, env={**os.environ, **env_cache}
    )
    assert "1 compiled artifacts" in listed.stdout and "quickjs" in listed.stdout
    cleared = subprocess.run(
        [*CLI, "cache", "--clear"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env_cache},
    )
    assert cleared.returncode == 0 and "cleared" in cleared.stdout
    assert not list((tmp_path / "cache").glob("*.cwasm"))


def test_run_streams_output_as_the_guest_writes_it(tmp_path: Path) -> None:
    # The guest waits (up to 20 s) for a file the test creates only once it has read the
    # first line from the pipe: "done" proves that line came out while the cell ran.
    code = (
        "import os, sys, time\n"
        "print('ready')\n"
        "end = time.monotonic() + 20\n"
        "while not os.path.exists('go') and time.monotonic() < end:\n"
        "    time.sleep(0.01)\n"
        "print('late', file=sys.stderr)\n"
        "print('done' if os.path.exists('go') else 'gave up')\n"
    )
    env = {**os.environ, "LLM_WASM_SANDBOX_HOME": str(tmp_path)}
    with subprocess.Popen(
        [*CLI, "run", "--session", "live", "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        (tmp_path / "sessions" / "live" / "workspace" / "go").write_text("1")
        rest, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    assert rest == "done\n" and errors == "late\n"
