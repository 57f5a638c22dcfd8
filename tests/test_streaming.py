"""Streamed output and cancellation through the Python API, with real guests in wasmtime."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox import (
    CellControl,
    ExecutionPolicy,
    OutputEvent,
    RuntimeType,
    Sandbox,
    SandboxResult,
    TrapReason,
    create_sandbox,
)

# A guest that prints "ready", then waits (polling, with its own 20 s deadline) for the file
# "go" that the test's callback creates on seeing "ready": it prints "done" only if the
# chunk reached the caller while the cell was still running.
_WAIT_FOR_GO = {
    RuntimeType.PYTHON: (
        "import os, time\n"
        "print('ready')\n"
        "end = time.monotonic() + 20\n"
        "while not os.path.exists('go') and time.monotonic() < end:\n"
        "    time.sleep(0.01)\n"
        "print('done' if os.path.exists('go') else 'gave up')\n"
    ),
    RuntimeType.JAVASCRIPT: (
        "console.log('ready');\n"
        "const end = Date.now() + 20000;\n"
        "while (std.loadFile('go') === null && Date.now() < end) os.sleep(10);\n"
        "console.log(std.loadFile('go') !== null ? 'done' : 'gave up');\n"
    ),
}
_TIGHT_LOOP = {RuntimeType.PYTHON: "while True: pass", RuntimeType.JAVASCRIPT: "for (;;) {}"}
_SET_X = {RuntimeType.PYTHON: "x = 41", RuntimeType.JAVASCRIPT: "globalThis.x = 41"}
_SHOW_X = {RuntimeType.PYTHON: "print(x)", RuntimeType.JAVASCRIPT: "console.log(x)"}
_FLOOD = {
    RuntimeType.PYTHON: "for i in range(100_000): print(i)",
    RuntimeType.JAVASCRIPT: "for (let i = 0; i < 100000; i++) console.log(i);",
}


class _Chunks:
    """What an on_output callback received, with a hook on each chunk."""

    def __init__(self, on_chunk: Callable[[str, str], None] | None = None) -> None:
        self.chunks: list[tuple[str, str]] = []
        self._on_chunk = on_chunk

    def __call__(self, stream: str, text: str) -> None:
        self.chunks.append((stream, text))
        if self._on_chunk is not None:
            self._on_chunk(stream, text)

    def text(self, stream: str = "stdout") -> str:
        return "".join(text for name, text in self.chunks if name == stream)


def _go_when_ready(workspace: Path) -> Callable[[str, str], None]:
    def on_chunk(stream: str, text: str) -> None:
        if "ready" in text:
            (workspace / "go").write_text("1")

    return on_chunk


def test_output_reaches_the_callback_while_the_cell_runs(runtime: RuntimeType) -> None:
    with create_sandbox(runtime) as sandbox:
        chunks = _Chunks(_go_when_ready(sandbox.workspace_path))
        result = sandbox.execute(_WAIT_FOR_GO[runtime], on_output=chunks)
        assert result.success, result.stderr
        assert result.stdout == "ready\ndone\n"
        assert chunks.text() == result.stdout  # all of it arrived before execute() returned


def test_stdout_and_stderr_keep_their_order(runtime: RuntimeType) -> None:
    code = {
        RuntimeType.PYTHON: "import sys\nprint('a')\nprint('b', file=sys.stderr)\nprint('c')",
        RuntimeType.JAVASCRIPT: "console.log('a'); console.error('b'); console.log('c');",
    }[runtime]
    with create_sandbox(runtime) as sandbox:
        chunks = _Chunks()
        sandbox.execute(code, on_output=chunks)
        merged = [(name, line) for name, text in chunks.chunks for line in text.splitlines()]
        assert merged == [("stdout", "a"), ("stderr", "b"), ("stdout", "c")]


def test_a_print_flood_is_coalesced_and_capped(runtime: RuntimeType) -> None:
    policy = ExecutionPolicy(stdout_max_bytes=200_000)
    with create_sandbox(runtime, policy) as sandbox:
        chunks = _Chunks()
        result = sandbox.execute(_FLOOD[runtime], on_output=chunks)
        assert result.metadata["stdout_truncated"]
        assert chunks.text() == result.stdout and len(result.stdout.encode()) == 200_000
        assert len(chunks.chunks) <= 40, len(chunks.chunks)  # not one call per print


def test_a_raising_callback_is_recorded_and_the_cell_goes_on(runtime: RuntimeType) -> None:
    def broken(stream: str, text: str) -> None:
        raise ValueError("callback bug")

    with create_sandbox(runtime) as sandbox:
        result = sandbox.execute(_SHOW_X[runtime].replace("x", "6 * 7"), on_output=broken)
        assert result.success and result.stdout == "42\n"
        assert result.metadata["output_callback_errors"] >= 1
        assert "ValueError: callback bug" in result.metadata["output_callback_error"]


def _assert_cancelled_and_reset(
    sandbox: Sandbox, result: SandboxResult, runtime: RuntimeType
) -> None:
    assert result.trap_reason is TrapReason.CANCELLED, (result.metadata, result.stderr)
    assert result.metadata["session_reset"] and not result.success
    assert result.metadata["error_guidance"]["error_type"] == "Cancelled"
    after = sandbox.execute(_SHOW_X[runtime])  # a fresh interpreter: x is gone
    assert not after.success


def _started_loop(runtime: RuntimeType) -> str:
    start = {
        RuntimeType.PYTHON: "print('looping')\n",
        RuntimeType.JAVASCRIPT: "console.log('looping');\n",
    }
    return start[runtime] + _TIGHT_LOOP[runtime]


def test_cancel_from_another_thread_stops_a_tight_loop(runtime: RuntimeType) -> None:
    with create_sandbox(runtime, ExecutionPolicy(timeout_seconds=60)) as sandbox:
        sandbox.execute(_SET_X[runtime])
        cancelled_at: list[float] = []

        def cancel_once_looping(stream: str, text: str) -> None:
            if "looping" in text:  # on the guest's thread: cancel from another one
                threading.Thread(
                    target=lambda: (cancelled_at.append(time.monotonic()), sandbox.cancel())
                ).start()

        result = sandbox.execute(_started_loop(runtime), on_output=cancel_once_looping)
        returned = time.monotonic()
        assert result.stdout == "looping\n"  # the output that had arrived is kept
        assert returned - cancelled_at[0] < 5  # far below the 60 s deadline
        _assert_cancelled_and_reset(sandbox, result, runtime)
        assert not sandbox.cancel()  # nothing runs now


def test_a_control_cancels_a_sleeping_cell() -> None:
    with create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(timeout_seconds=60)) as sandbox:
        control = CellControl(lambda stream, text: threading.Thread(target=control.cancel).start())
        result = sandbox.execute("import time\nprint('sleeping')\ntime.sleep(50)", control=control)
        assert result.trap_reason is TrapReason.CANCELLED and result.stdout == "sleeping\n"
        with pytest.raises(ValueError, match="not both"):
            sandbox.execute("1", on_output=print, control=CellControl())


def test_cancelling_the_aexecute_task_stops_the_cell(runtime: RuntimeType) -> None:
    async def scenario(sandbox: Sandbox) -> None:
        started = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_output(stream: str, text: str) -> None:
            loop.call_soon_threadsafe(started.set)

        task = asyncio.create_task(sandbox.aexecute(_started_loop(runtime), on_output=on_output))
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)  # the cell stopped: the task could finish
        result = await asyncio.wait_for(sandbox.aexecute(_SHOW_X[runtime]), 30)
        assert not result.success  # the interpreter was replaced: x is gone

    with create_sandbox(runtime, ExecutionPolicy(timeout_seconds=60)) as sandbox:
        sandbox.execute(_SET_X[runtime])
        asyncio.run(scenario(sandbox))


def test_astream_yields_output_then_the_result(runtime: RuntimeType) -> None:
    async def scenario(sandbox: Sandbox) -> list[OutputEvent | SandboxResult]:
        on_chunk = _go_when_ready(sandbox.workspace_path)
        events: list[OutputEvent | SandboxResult] = []
        async for event in sandbox.astream(_WAIT_FOR_GO[runtime]):
            events.append(event)
            if isinstance(event, OutputEvent):
                on_chunk(event.stream, event.text)
        return events

    with create_sandbox(runtime) as sandbox:
        events = asyncio.run(scenario(sandbox))
        result = events[-1]
        assert isinstance(result, SandboxResult) and result.stdout == "ready\ndone\n"
        assert "".join(e.text for e in events[:-1] if isinstance(e, OutputEvent)) == result.stdout


def test_leaving_astream_early_cancels_the_cell() -> None:
    async def scenario(sandbox: Sandbox) -> None:
        stream = sandbox.astream(_started_loop(RuntimeType.PYTHON))
        async for event in stream:
            assert isinstance(event, OutputEvent) and event.text == "looping\n"
            break
        await asyncio.wait_for(stream.aclose(), 10)

    with create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(timeout_seconds=60)) as sandbox:
        asyncio.run(scenario(sandbox))
        assert sandbox.execute("print(1)").stdout == "1\n"  # the sandbox is free again
