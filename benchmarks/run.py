"""Speed benchmarks for llm-wasm-sandbox (run by hand; prints medians and ratios).

    python benchmarks/run.py            # all benchmarks
    python benchmarks/run.py --quick    # fewer iterations
    python benchmarks/run.py --skip-compile   # without the first-use compile (minutes)

Figures: first compile vs cached load, fresh-interpreter latency (pool warm, and back to
back), boot without the pool, session call latency, 1 vs 2 thread throughput, and the RSS of
50 idle Python sessions. Comparisons with other sandboxes are in benchmarks/peers.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

os.environ.setdefault("LLM_WASM_SANDBOX_HOME", tempfile.mkdtemp(prefix="llm-wasm-sandbox-bench-"))

from sandbox import ExecutionPolicy, RuntimeType, create_sandbox

HELLO = {RuntimeType.PYTHON: "print('hello')", RuntimeType.JAVASCRIPT: "console.log('hello')"}
COUNTER = {
    RuntimeType.PYTHON: ("x = 0", "x += 1; print(x)"),
    RuntimeType.JAVASCRIPT: ("var x = 0", "x += 1; console.log(x)"),
}
CPU_BOUND = {
    RuntimeType.PYTHON: "print(sum(i * i for i in range(300_000)))",
    RuntimeType.JAVASCRIPT: "{ let s = 0; for (let i = 0; i < 3_000_000; i++) s += i * i; console.log(s) }",
}


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {statistics.median(samples) * 1000:8.3f} ms   p95 {p95 * 1000:8.3f} ms   (n={len(samples)})"


def _time(action: Callable[[], object], repeat: int, pause: float = 0.0) -> list[float]:
    samples = []
    for _ in range(repeat):
        if pause:
            time.sleep(pause)  # let the warm pool refill, as between an LLM's tool calls
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def compile_vs_cache() -> None:
    print("\n== First use on a new machine (empty cache) vs cached load, fresh process each ==")
    print("   (Python: warm-up compile + snapshot build + snapshot compile; minutes)")
    script = (
        "import time, sys\nfrom sandbox.runtimes import runtime_for\n"
        "t = time.perf_counter(); runtime_for(sys.argv[1]).prepare()\n"
        "print(time.perf_counter() - t)"
    )
    for runtime in RuntimeType:
        cache = tempfile.mkdtemp()
        env = {**os.environ, "LLM_WASM_SANDBOX_CACHE_DIR": cache}
        runs = [
            float(
                subprocess.run(
                    [sys.executable, "-c", script, runtime.value],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            for _ in range(3)
        ]
        print(
            f"{runtime.value:10s} compile {runs[0] * 1000:8.1f} ms   cached load "
            f"{statistics.median(runs[1:]) * 1000:6.1f} ms   ratio {runs[0] / statistics.median(runs[1:]):.0f}x"
        )


def fresh_interpreter(repeat: int) -> None:
    print("\n== A fresh interpreter per call: execute(hello) on a new sandbox ==")
    print("   (execute = the call alone; cycle = create_sandbox + execute + close)")
    for runtime in RuntimeType:
        execute_only: list[float] = []

        def cycle(runtime: RuntimeType = runtime, execute_only: list[float] = execute_only) -> None:
            with create_sandbox(runtime) as sandbox:
                started = time.perf_counter()
                assert sandbox.execute(HELLO[runtime]).success
                execute_only.append(time.perf_counter() - started)

        cycle()  # create the pool
        execute_only.clear()
        paced = _time(cycle, repeat, pause=0.1)
        paced_execute = list(execute_only)
        back_to_back = _time(cycle, repeat)
        cold = _time(lambda runtime=runtime: _cold(runtime), max(5, repeat // 4))
        print(f"{runtime.value:10s} execute, pool warm  {_ms(paced_execute)}")
        print(f"{runtime.value:10s} cycle, pool warm    {_ms(paced)}")
        print(f"{runtime.value:10s} cycle, back to back {_ms(back_to_back)}")
        print(
            f"{runtime.value:10s} cycle, cold boot    {_ms(cold)}   "
            f"pool speed-up {statistics.median(cold) / statistics.median(paced):.1f}x"
        )


def _cold(runtime: RuntimeType) -> None:
    with create_sandbox(runtime, session_id="bench-cold") as sandbox:
        assert sandbox.execute(HELLO[runtime]).success


def session_calls(repeat: int) -> None:
    print("\n== Session call `x += 1; print(x)` in a live interpreter ==")
    for runtime in RuntimeType:
        setup, step = COUNTER[runtime]
        with create_sandbox(runtime) as sandbox:
            sandbox.execute(setup)
            time.sleep(1.0)  # a warm process: let the pool finish booting its spares first
            samples = _time(lambda: sandbox.execute(step), repeat)  # noqa: B023
            assert sandbox.execute(step).stdout.strip() == str(repeat + 1)
        print(f"{runtime.value:10s} {_ms(samples)}")


def parallel_throughput(calls: int) -> None:
    print("\n== CPU-bound calls in separate sandboxes: 1 thread vs 2 threads ==")
    for runtime in RuntimeType:
        sandboxes = [create_sandbox(runtime, ExecutionPolicy(fuel_budget=10**12)) for _ in range(2)]
        for sandbox in sandboxes:
            sandbox.execute(CPU_BOUND[runtime])

        def worker(index: int, count: int) -> None:
            for _ in range(count):
                sandboxes[index].execute(CPU_BOUND[runtime])  # noqa: B023

        started = time.perf_counter()
        worker(0, calls)
        single = calls / (time.perf_counter() - started)
        threads = [threading.Thread(target=worker, args=(index, calls // 2)) for index in range(2)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        double = calls / (time.perf_counter() - started)
        for sandbox in sandboxes:
            sandbox.close()
        print(
            f"{runtime.value:10s} 1 thread {single:7.1f} calls/s   2 threads {double:7.1f} calls/s   "
            f"ratio {double / single:.2f}x"
        )


def idle_session_rss(count: int) -> None:
    print(f"\n== RSS of {count} idle live Python sessions ==")
    script = (
        "import os, sys, tempfile\nos.environ['LLM_WASM_SANDBOX_HOME'] = tempfile.mkdtemp()\n"
        "from sandbox import create_sandbox\n"
        "def rss():\n    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
        "warm = create_sandbox('python'); warm.execute('x = 1')\nbase = rss()\n"
        f"boxes = [create_sandbox('python', session_id=f's{{i}}') for i in range({count})]\n"
        "for b in boxes:\n    b.execute('x = list(range(100))')\n"
        "print(base, rss())"
    )
    base, after = map(
        int,
        subprocess.run(
            [sys.executable, "-c", script], check=True, capture_output=True, text=True
        ).stdout.split(),
    )
    per = (after - base) / count
    print(
        f"baseline {base / 2**20:.0f} MiB, with {count} sessions {after / 2**20:.0f} MiB: "
        f"{per / 2**20:.1f} MiB per session"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument(
        "--skip-compile", action="store_true", help="skip the first-use compile (minutes)"
    )
    args = parser.parse_args()
    repeat = 40 if args.quick else 200
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    if not args.skip_compile:
        compile_vs_cache()
    session_calls(repeat * 5)  # before the pool benchmarks, whose refills would still be running
    fresh_interpreter(repeat // 2)
    parallel_throughput(20 if args.quick else 60)
    idle_session_rss(50)


if __name__ == "__main__":
    main()
