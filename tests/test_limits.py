"""Every hard limit, provoked by hostile code; after each, the host and the next call are fine."""

from __future__ import annotations

import resource
import time

import pytest

from sandbox import ExecutionPolicy, RuntimeType, TrapReason, create_sandbox

SPIN = {RuntimeType.PYTHON: "while True:\n    pass", RuntimeType.JAVASCRIPT: "for (;;) {}"}
SET_STATE = {RuntimeType.PYTHON: "kept = 1", RuntimeType.JAVASCRIPT: "var kept = 1"}
PRINT_STATE = {
    RuntimeType.PYTHON: "print(kept)",
    RuntimeType.JAVASCRIPT: "console.log(typeof kept === 'undefined' ? 'gone' : kept)",
}


def test_infinite_loop_stopped_by_fuel_then_session_restarts(runtime: RuntimeType) -> None:
    policy = ExecutionPolicy(fuel_budget=200_000_000, timeout_seconds=60)
    with create_sandbox(runtime, policy) as sandbox:
        sandbox.execute(SET_STATE[runtime])
        result = sandbox.execute(SPIN[runtime])
        assert not result.success
        assert result.trap_reason is TrapReason.FUEL_EXHAUSTED
        assert result.fuel_consumed == 200_000_000
        assert result.metadata["session_reset"] is True
        assert result.metadata["session_reset_reason"] == "fuel_exhausted"
        after = sandbox.execute(PRINT_STATE[runtime])
    # A fresh interpreter: the variable from before the stop is gone.
    assert after.stdout == "gone\n" or "NameError: name 'kept' is not defined" in after.stderr


def test_infinite_loop_stopped_by_deadline(runtime: RuntimeType) -> None:
    policy = ExecutionPolicy(fuel_budget=10**15, timeout_seconds=0.5)
    with create_sandbox(runtime, policy) as sandbox:
        started = time.monotonic()
        result = sandbox.execute(SPIN[runtime])
        elapsed = time.monotonic() - started
        assert result.trap_reason is TrapReason.TIMEOUT
        assert 0.4 < elapsed < 3
        assert sandbox.execute("1").success


def test_sleep_is_bounded_by_the_deadline(runtime: RuntimeType) -> None:
    sleep = {
        RuntimeType.PYTHON: "import time\ntime.sleep(3600)",
        RuntimeType.JAVASCRIPT: "os.sleep(3600 * 1000)",
    }
    with create_sandbox(runtime) as sandbox:
        started = time.monotonic()
        result = sandbox.execute(sleep[runtime], timeout_seconds=0.5)
        assert time.monotonic() - started < 3
        assert result.trap_reason is TrapReason.TIMEOUT


def test_short_sleep_really_sleeps() -> None:
    with create_sandbox(RuntimeType.PYTHON) as sandbox:
        result = sandbox.execute(
            "import time\nt = time.monotonic()\ntime.sleep(0.2)\nprint(time.monotonic() - t >= 0.2)"
        )
    assert result.stdout == "True\n"


def test_per_call_timeout_override() -> None:
    with create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(fuel_budget=10**15)) as sandbox:
        result = sandbox.execute(SPIN[RuntimeType.PYTHON], timeout_seconds=0.3)
    assert result.trap_reason is TrapReason.TIMEOUT
    assert result.metadata["timeout_seconds"] == 0.3


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_memory_bomb_stopped_at_the_limit(runtime: RuntimeType) -> None:
    bomb = {
        RuntimeType.PYTHON: "blocks = []\nwhile True:\n    blocks.append(bytearray(8 * 1024 * 1024))",
        RuntimeType.JAVASCRIPT: "const blocks = []; for (;;) blocks.push(new Uint8Array(8 * 1024 * 1024));",
    }
    # Python's interpreter starts from a ~70 MiB snapshot of CPython with numpy and pandas.
    limit = {RuntimeType.PYTHON: 160, RuntimeType.JAVASCRIPT: 64}[runtime] * 1024 * 1024
    with create_sandbox(runtime, ExecutionPolicy(memory_bytes=limit)) as sandbox:
        before = _peak_rss_bytes()
        result = sandbox.execute(bomb[runtime])
        grown = _peak_rss_bytes() - before
        assert result.trap_reason is TrapReason.MEMORY_LIMIT, result.stderr
        assert result.memory_used_bytes <= limit
        assert grown < 256 * 1024 * 1024
        assert sandbox.execute("1 + 1").success


def test_output_flood_is_capped(runtime: RuntimeType) -> None:
    flood = {
        RuntimeType.PYTHON: "for i in range(200_000):\n    print('x' * 99)",
        RuntimeType.JAVASCRIPT: "for (let i = 0; i < 200000; i++) console.log('x'.repeat(99));",
    }
    policy = ExecutionPolicy(stdout_max_bytes=10_000)
    with create_sandbox(runtime, policy) as sandbox:
        result = sandbox.execute(flood[runtime])
    assert result.success, result.stderr
    assert len(result.stdout.encode()) == 10_000
    assert result.metadata["stdout_truncated"] is True
    assert result.metadata["stdout_bytes"] == 200_000 * 100


def test_stderr_flood_is_capped() -> None:
    policy = ExecutionPolicy(stderr_max_bytes=1000)
    with create_sandbox(RuntimeType.PYTHON, policy) as sandbox:
        result = sandbox.execute(
            "import sys\nfor i in range(10_000):\n    sys.stderr.write('e' * 50)"
        )
    assert len(result.stderr) == 1000
    assert result.metadata["stderr_truncated"] is True


def test_guest_exit_does_not_take_down_the_host(runtime: RuntimeType) -> None:
    exit_now = {RuntimeType.PYTHON: "import os\nos._exit(3)", RuntimeType.JAVASCRIPT: "std.exit(3)"}
    with create_sandbox(runtime) as sandbox:
        result = sandbox.execute(exit_now[runtime])
        assert result.trap_reason is TrapReason.GUEST_EXIT
        assert result.exit_code == 3
        assert result.metadata["session_reset"] is True
        assert sandbox.execute("1").success


def test_deep_recursion_is_an_error_not_a_crash(runtime: RuntimeType) -> None:
    recurse = {
        RuntimeType.PYTHON: "def f(n):\n    return f(n + 1)\nf(0)",
        RuntimeType.JAVASCRIPT: "function f(n) { return f(n + 1) } f(0)",
    }
    with create_sandbox(runtime) as sandbox:
        result = sandbox.execute(recurse[runtime])
        assert not result.success
        assert (
            "RecursionError" in result.stderr or "RangeError" in result.stderr or result.trap_reason
        )
        assert sandbox.execute("1").success


@pytest.mark.parametrize("bad", [{"memory_bytes": 10}, {"timeout_seconds": 0}, {"fuel_budget": -1}])
def test_limits_are_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        ExecutionPolicy(**bad)


def test_workspace_disk_quota(runtime: RuntimeType) -> None:
    fill = {
        RuntimeType.PYTHON: (
            "try:\n"
            "    with open('big.bin', 'wb') as f:\n"
            "        for i in range(100):\n"
            "            f.write(b'x' * 65536)\n"
            "except OSError as e:\n"
            "    print('refused', e.errno, e.strerror)\n"
        ),
        RuntimeType.JAVASCRIPT: (
            "try { for (let i = 0; i < 100; i++) appendText('big.bin', 'x'.repeat(65536)); }"
            " catch (e) { console.log('refused', e.message); }"
        ),
    }
    policy = ExecutionPolicy(workspace_max_bytes=1024 * 1024)
    with create_sandbox(runtime, policy) as sandbox:
        result = sandbox.execute(fill[runtime])
        size = (sandbox.workspace_path / "big.bin").stat().st_size
        assert "refused" in result.stdout, result.stdout + result.stderr
        assert "space" in result.stdout.lower()
        assert size <= 1024 * 1024
        # The next call starts from the real size: nothing more fits, a delete frees room.
        again = sandbox.execute(fill[runtime])
        assert "refused" in again.stdout
        (sandbox.workspace_path / "big.bin").unlink()
        small = {
            RuntimeType.PYTHON: "open('small.txt', 'w').write('ok')",
            RuntimeType.JAVASCRIPT: "writeText('small.txt', 'ok')",
        }
        assert sandbox.execute(small[runtime]).success


def test_guests_stopping_on_other_threads_do_not_cross_talk() -> None:
    """Closing parked guests on one thread while guests exit on another: every exit is seen.

    wasmtime-py keeps a host function's exception in one process-wide slot; when our host
    functions raised to stop a guest, another thread's trap could take that exception and its
    cell hung until the deadline. This churns both sides at once.
    """
    import threading

    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            with create_sandbox(RuntimeType.JAVASCRIPT) as parked:
                parked.execute("1")

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        for _ in range(100):
            with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
                result = sandbox.execute("std.exit(3)", timeout_seconds=5)
                assert result.trap_reason is TrapReason.GUEST_EXIT
                assert result.duration_ms < 4000
    finally:
        stop.set()
        churner.join()
