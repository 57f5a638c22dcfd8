"""What a killed process leaves on disk is found and removed by the next one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sandbox.sessions.workspace import SPARE_MARKER, remove_orphaned_spares, spare_workspace

_BOOT_AND_WAIT = """
import sys, time
from pathlib import Path
from sandbox import create_sandbox, RuntimeType
sandbox = create_sandbox(RuntimeType.JAVASCRIPT)
sandbox.execute("1")
root = Path(sys.argv[1]) / "sessions"
deadline = time.monotonic() + 60
while len([p for p in root.iterdir() if not (p / "session.json").exists()]) < 2:
    assert time.monotonic() < deadline
    time.sleep(0.01)
print("ready", flush=True)
time.sleep(600)
"""


def test_spares_of_a_killed_process_are_removed_by_the_next(tmp_path: Path) -> None:
    env = {**os.environ, "LLM_WASM_SANDBOX_HOME": str(tmp_path)}
    doomed = subprocess.Popen(
        [sys.executable, "-c", _BOOT_AND_WAIT, str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert doomed.stdout is not None
    assert doomed.stdout.readline() == "ready\n"
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    root = tmp_path / "sessions"
    spares = [p for p in root.iterdir() if (p / SPARE_MARKER).exists()]
    assert len(spares) >= 2
    session = [p for p in root.iterdir() if (p / "session.json").exists()]
    assert len(session) == 1  # the session itself is kept for its owner (prune_sessions)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from sandbox import create_sandbox; create_sandbox('javascript').close()",
        ],
        env=env,
        check=True,
        timeout=120,
    )
    assert not any(spare.exists() for spare in spares)
    assert session[0].exists()


def test_only_dead_processes_spares_and_old_leftovers_are_removed(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = spare_workspace(tmp_path).parent
    (dead / SPARE_MARKER).write_text(json.dumps({"pid": int(finished.stdout), "started": "0"}))
    mine = spare_workspace(tmp_path).parent
    reused_pid = spare_workspace(tmp_path).parent  # a live pid, but another process's start
    (reused_pid / SPARE_MARKER).write_text(json.dumps({"pid": os.getpid(), "started": "1"}))
    old_leftover = tmp_path / "leftover"
    (old_leftover / "workspace").mkdir(parents=True)
    an_hour_ago = time.time() - 3700
    os.utime(old_leftover, (an_hour_ago, an_hour_ago))
    fresh_leftover = tmp_path / "being-created"
    (fresh_leftover / "workspace").mkdir(parents=True)
    session = tmp_path / "a-session"
    (session / "workspace").mkdir(parents=True)
    (session / "session.json").write_text("{}")

    assert remove_orphaned_spares(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [mine.name, "being-created", "a-session"]
    )


_EXIT_WITH_LIVE_GUESTS = """
from sandbox import create_sandbox
python = create_sandbox("python")
print(python.execute("print('hi')").stdout.strip())
javascript = create_sandbox("javascript")
javascript.execute("console.log(1)")
"""


def test_exiting_with_live_guests_is_clean(tmp_path: Path) -> None:
    """Python exits while sandboxes are open: no wasmtime panic message, ever.

    wasmtime releases a store's output callbacks from its own worker threads; one that ran
    while Python finalized printed "panic in a function that cannot unwind" (1 run in 10).
    """
    env = {**os.environ, "LLM_WASM_SANDBOX_HOME": str(tmp_path)}
    for _ in range(12):
        done = subprocess.run(
            [sys.executable, "-c", _EXIT_WITH_LIVE_GUESTS],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0 and done.stdout == "hi\n", done.stderr
        assert "panic" not in done.stderr, done.stderr


_EXIT_DURING_A_PYTHON_CELL = """
import threading
from sandbox import ExecutionPolicy, create_sandbox
sandbox = create_sandbox("python", ExecutionPolicy(timeout_seconds=600, fuel_budget=10**15))
running = threading.Event()
threading.Thread(
    target=lambda: (running.set(), sandbox.execute("while True: pass")), daemon=True
).start()
running.wait()
print("exiting")
"""


def test_exiting_during_a_running_python_cell_does_not_wait_for_its_deadline(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "LLM_WASM_SANDBOX_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", _EXIT_DURING_A_PYTHON_CELL],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # the cell's own deadline is 600 s
    )
    assert done.stdout == "exiting\n", done.stderr
    assert "panic" not in done.stderr
