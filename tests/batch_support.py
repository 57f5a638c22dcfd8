"""Items and checks shared by the local and Ray batch tests (real guests, no mocks)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox import BatchResult, BatchRun, ExecutionPolicy

HOSTILE_ITEMS: list[Any] = [
    {"id": "ok", "code": "print(6 * 7)"},
    {"id": "loop", "code": "while True: pass", "policy": {"timeout_seconds": 1}},
    {"id": "bomb", "code": "x = bytearray(10**9)", "policy": {"memory_bytes": 128 * 2**20}},
    {"id": "exit", "code": "import os; os._exit(3)"},
    {"id": "raise", "code": "raise ValueError('boom')"},
    {"id": "js", "language": "javascript", "code": "console.log([1, 2].map(x => x * 2))"},
    {
        "id": "js-loop",
        "language": "javascript",
        "code": "for (;;) {}",
        "policy": {"timeout_seconds": 1},
    },
    {
        "id": "stdin",
        "code": "import sys; print(input().upper()); print(sys.stdin.read())",
        "stdin": "hi\nrest",
    },
    {
        "id": "js-stdin",
        "language": "javascript",
        "code": "console.log(readText('.stdin'))",
        "stdin": "in",
    },
    {"id": "files", "code": "print(open('data/a.txt').read())", "files": {"data/a.txt": "A!"}},
    {"id": "bad-policy", "code": "1", "policy": {"memory_bytes": -1}},
    {"id": "bad-file", "code": "1", "files": {"../escape": "x"}},
    {"code": "print('no id')"},
    {"id": "ok", "code": "print('duplicate')"},
    "not a mapping",
    {"id": "after", "code": "print('still running')"},
]


def check_hostile(results: list[BatchResult]) -> None:
    # The duplicate "ok" is reported under its id too; keep the original's result here.
    by_id = {result.id: result for result in results if not (result.id == "ok" and result.error)}
    assert len(results) == len(HOSTILE_ITEMS)
    assert by_id["ok"].success and by_id["ok"].stdout == "42\n"
    assert by_id["loop"].trap_reason in {"timeout", "fuel_exhausted"}
    assert by_id["bomb"].trap_reason == "memory_limit"
    assert by_id["exit"].trap_reason == "guest_exit" and not by_id["exit"].success
    assert "ValueError: boom" in by_id["raise"].stderr and not by_id["raise"].success
    assert by_id["js"].stdout == "2,4\n" and by_id["js"].language == "javascript"
    assert by_id["js-loop"].trap_reason in {"timeout", "fuel_exhausted"}
    assert by_id["stdin"].stdout == "HI\nrest\n"
    assert by_id["js-stdin"].stdout == "in\n"
    assert by_id["files"].stdout == "A!\n"
    assert "invalid policy: memory_bytes: Input should be greater than or equal to" in str(
        by_id["bad-policy"].error
    )
    assert "relative path inside the workspace" in str(by_id["bad-file"].error)
    assert "id: Field required" in str(by_id["#12"].error)
    duplicates = [r for r in results if r.id == "ok" and r.error]
    assert len(duplicates) == 1 and "duplicate id" in str(duplicates[0].error)
    assert "must be a BatchItem or a mapping" in str(by_id["#14"].error)
    assert by_id["after"].success and by_id["after"].stdout == "still running\n"


def _pid_of(worker: str) -> int:
    return int(worker.rsplit(":", 1)[1])


def _wait_for(condition: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def death_items(gate: Path) -> list[dict[str, Any]]:
    """``once`` waits for a file the test creates after killing its first worker; ``twice``
    waits forever (each of its workers is killed); the plain items show the pool goes on.
    Run them with ``death_policy(gate)``: only the batch's policy may mount a directory."""
    mount = {"timeout_seconds": 120}
    wait = "import os, time\nwhile not os.path.exists('/gate/{}'): time.sleep(0.02)\nprint('done')"
    return [
        {"id": "once", "code": wait.format("go"), "policy": mount},
        {"id": "a", "code": "print('a')"},
        {"id": "twice", "code": wait.format("never"), "policy": mount},
        {"id": "b", "code": "print('b')"},
    ]


def death_policy(gate: Path) -> ExecutionPolicy:
    """The batch policy of ``death_items``: the gate directory mounted at /gate."""
    return ExecutionPolicy(mounts={gate: "/gate"})


def kill_workers_under(run: BatchRun, gate: Path) -> tuple[threading.Thread, list[BaseException]]:
    """Kill the worker running ``once`` (then open its gate) and both workers of ``twice``."""

    def worker_running(item_id: str, not_pid: int | None = None) -> Callable[[], int | None]:
        def find() -> int | None:
            for worker, running in run.in_flight().items():
                if running == item_id and _pid_of(worker) != not_pid:
                    return _pid_of(worker)
            return None

        return find

    def killer() -> None:
        try:
            kill_in_turn()
        except BaseException as error:
            failures.append(error)
            for name in ("go", "never"):  # let the batch finish, so the test fails at once
                (gate / name).touch()

    def kill_in_turn() -> None:
        first = _wait_for(worker_running("once"), "the first worker of 'once'")
        os.kill(first, signal.SIGKILL)
        _wait_for(worker_running("once", first), "the retry of 'once'")
        (gate / "go").touch()
        killed = _wait_for(worker_running("twice"), "the first worker of 'twice'")
        os.kill(killed, signal.SIGKILL)
        os.kill(_wait_for(worker_running("twice", killed), "the retry of 'twice'"), signal.SIGKILL)

    failures: list[BaseException] = []
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return thread, failures


def check_deaths(results: list[BatchResult]) -> None:
    by_id = {result.id: result for result in results}
    assert by_id["once"].success and by_id["once"].stdout == "done\n"
    assert by_id["once"].attempts == 2
    assert not by_id["twice"].success and by_id["twice"].attempts == 2
    assert "died on each of 2 attempts" in str(by_id["twice"].error)
    assert by_id["a"].stdout == "a\n" and by_id["b"].stdout == "b\n"
