"""Streaming and cancellation costs (run by hand; prints medians).

    python benchmarks/streaming.py [--repeat N]

Figures, for both runtimes: the latency from a guest's print to the on_output callback
(the guest prints its wall-clock time after a pause, so each print is the first of its
interval and goes out at once); a cell printing 1 MB with and without on_output (streamed
Python cells write stdout line by line); a 1e6-iteration loop with the 10 ms epoch slice
that checks for cancels, against one slice for the whole cell (the epoch callback's cost);
and how long sandbox.cancel() takes to stop a tight loop.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time

os.environ.setdefault("LLM_WASM_SANDBOX_HOME", tempfile.mkdtemp(prefix="llm-wasm-sandbox-bench-"))

from sandbox import ExecutionPolicy, RuntimeType, Sandbox, create_sandbox
from sandbox.host import guest_store

PY, JS = RuntimeType.PYTHON, RuntimeType.JAVASCRIPT
STAMPS = {
    PY: "import time\nfor _ in range({n}):\n    time.sleep(0.05)\n    print(repr(time.time()))",
    JS: "for (let i = 0; i < {n}; i++) {{ os.sleep(50); console.log(String(Date.now() / 1000)); }}",
}
ONE_MB = {
    PY: "line = 'x' * 99\nfor _ in range(10_000): print(line)",
    JS: "const line = 'x'.repeat(99); for (let i = 0; i < 10000; i++) console.log(line);",
}
LOOP = {
    PY: "for i in range(1_000_000): pass",
    JS: "for (let i = 0; i < 1000000; i++) {}",
}
TIGHT = {PY: "print('go')\nwhile True: pass", JS: "console.log('go'); for (;;) {}"}


def _median_ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:8.3f} ms (n={len(samples)})"


def print_latency(sandbox: Sandbox, runtime: RuntimeType, n: int) -> None:
    latencies: list[float] = []

    def on_output(stream: str, text: str) -> None:
        now = time.time()
        latencies.extend(now - float(line) for line in text.split())

    sandbox.execute(STAMPS[runtime].format(n=n), on_output=on_output)
    print(f"  {runtime.value:10} print -> callback   {_median_ms(latencies)}")


def timed(sandbox: Sandbox, code: str, repeat: int, **options: object) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = sandbox.execute(code, **options)  # type: ignore[arg-type]
        samples.append(time.perf_counter() - started)
        assert result.success, result.stderr
    return samples


def one_mb(sandbox: Sandbox, runtime: RuntimeType, repeat: int) -> None:
    calls: list[int] = []
    plain = timed(sandbox, ONE_MB[runtime], repeat)
    streamed = timed(sandbox, ONE_MB[runtime], repeat, on_output=lambda s, t: calls.append(1))
    print(f"  {runtime.value:10} 1 MB, not streamed {_median_ms(plain)}")
    print(
        f"  {runtime.value:10} 1 MB, streamed     {_median_ms(streamed)}  "
        f"({len(calls) / repeat:.0f} callbacks a cell)"
    )


def loop_cost(sandbox: Sandbox, runtime: RuntimeType, repeat: int) -> None:
    sliced = timed(sandbox, LOOP[runtime], repeat)
    slice_seconds = guest_store.EPOCH_SLICE_SECONDS
    guest_store.EPOCH_SLICE_SECONDS = 3600.0  # one slice for the whole cell: no callbacks
    try:
        whole = timed(sandbox, LOOP[runtime], repeat)
    finally:
        guest_store.EPOCH_SLICE_SECONDS = slice_seconds
    print(f"  {runtime.value:10} 1e6 loop, 10 ms slices {_median_ms(sliced)}")
    print(f"  {runtime.value:10} 1e6 loop, one slice    {_median_ms(whole)}")


def _cancel_once(sandbox: Sandbox, runtime: RuntimeType) -> float:
    """Seconds from cancel() (on another thread, once the loop runs) to execute() returning."""
    asked: list[float] = []

    def cancel() -> None:
        asked.append(time.perf_counter())
        sandbox.cancel()

    def on_output(stream: str, text: str) -> None:
        threading.Thread(target=cancel).start()

    result = sandbox.execute(TIGHT[runtime], on_output=on_output)
    assert result.trap_reason is not None and result.trap_reason.value == "cancelled"
    return time.perf_counter() - asked[0]


def cancel_latency(runtime: RuntimeType, repeat: int) -> None:
    policy = ExecutionPolicy(timeout_seconds=60)
    samples = []
    for _ in range(repeat):
        with create_sandbox(runtime, policy) as sandbox:
            samples.append(_cancel_once(sandbox, runtime))
    print(f"  {runtime.value:10} cancel -> returned  {_median_ms(samples)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    repeat = parser.parse_args().repeat
    print("== Streaming and cancellation ==")
    for runtime in (PY, JS):
        with create_sandbox(runtime) as sandbox:
            sandbox.execute(LOOP[runtime])  # warm
            print_latency(sandbox, runtime, n=max(20, repeat))
            one_mb(sandbox, runtime, repeat)
            loop_cost(sandbox, runtime, repeat)
        cancel_latency(runtime, max(5, repeat // 3))


if __name__ == "__main__":
    main()
