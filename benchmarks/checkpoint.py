"""Checkpoint, restore, undo and fork speed (run by hand; prints medians).

    python benchmarks/checkpoint.py [--runs N]

The session has numpy and pandas imported and a DataFrame, a class and a function defined.
Figures: checkpoint, restore, undo, fork (Python, with a 1 MB workspace file), bytes stored
per checkpoint, a call with and without the automatic per-cell undo checkpoint, the saved
state written at close, and a reopened session's first call (what a server restart costs),
and a JavaScript restore by replay of 10 cells.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("LLM_WASM_SANDBOX_HOME", tempfile.mkdtemp(prefix="llm-wasm-sandbox-bench-"))

from sandbox import ExecutionPolicy, RuntimeType, create_sandbox
from sandbox.sessions.checkpoints import SAVED_STATE, STATE_DIR

SETUP = (
    "import numpy as np, pandas as pd\n"
    "df = pd.DataFrame({'a': np.arange(1000), 'b': np.random.rand(1000)})\n"
    "class K:\n    v = 7\n"
    "def f(n):\n    return n * 2\n"
    "x = 41\n"
)


def _median_ms(action: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs

    sandbox = create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(undo_last_cell=True))
    assert sandbox.execute(SETUP).success
    (sandbox.workspace_path / "data.bin").write_bytes(os.urandom(1 << 20))
    checkpoints = []
    print(
        f"checkpoint        {_median_ms(lambda: checkpoints.append(sandbox.checkpoint()), runs):7.2f} ms"
    )
    last = checkpoints[-1]
    print(
        f"  bytes stored    {last.memory_bytes / 1e6:7.2f} MB of interpreter pages "
        f"(+{checkpoints[0].files_bytes / 1e6:.2f} MB of files the first time, 0 after)"
    )
    for checkpoint in checkpoints[:-1]:
        sandbox.delete_checkpoint(checkpoint)
    print(f"restore           {_median_ms(lambda: sandbox.restore(last), runs):7.2f} ms")

    def undo() -> None:
        sandbox.execute("x += 1")
        sandbox.undo()

    cell_ms = _median_ms(lambda: sandbox.execute("x += 1"), runs)
    undo_ms = _median_ms(undo, runs) - cell_ms
    print(f"undo              {undo_ms:7.2f} ms (after a cell)")
    print(f"cell with undo    {cell_ms:7.2f} ms (automatic checkpoint before each cell)")
    plain = create_sandbox(RuntimeType.PYTHON)  # undo_last_cell is off by default
    plain.execute(SETUP)
    print(
        f"cell without      {_median_ms(lambda: plain.execute('x += 1'), runs):7.2f} ms "
        "(the default: undo_last_cell=False)"
    )
    plain.close()

    children = []
    print(
        f"fork              {_median_ms(lambda: children.append(sandbox.fork()), runs):7.2f} ms "
        "(1 MB workspace copied)"
    )
    for child in children:
        child.close()

    session_id = sandbox.session_id
    state_path = sandbox.session_dir / STATE_DIR / SAVED_STATE
    close_samples, reopen_samples = [], []
    for _ in range(max(5, runs // 2)):
        started = time.perf_counter()
        sandbox.close(keep_state=True)
        close_samples.append((time.perf_counter() - started) * 1000)
        size = state_path.stat().st_size
        started = time.perf_counter()
        sandbox = create_sandbox(
            RuntimeType.PYTHON, ExecutionPolicy(undo_last_cell=True), session_id=session_id
        )
        result = sandbox.execute("print(f(1), K.v, len(df))")
        reopen_samples.append((time.perf_counter() - started) * 1000)
        assert result.stdout == "2 7 1000\n", result.stderr
    print(
        f"close (state saved){statistics.median(close_samples):6.2f} ms, file {size / 1e6:.2f} MB"
    )
    print(f"reopen + 1st call {statistics.median(reopen_samples):7.2f} ms (as after a restart)")
    sandbox.close()

    js = create_sandbox(RuntimeType.JAVASCRIPT)
    for index in range(10):
        js.execute(f"var v{index} = {index}; function g{index}() {{ return v{index} }}")
    mark = js.checkpoint()
    print(
        f"JS restore (10 cells replayed) {_median_ms(lambda: js.restore(mark), max(3, runs // 4)):7.2f} ms"
    )
    js.close()


if __name__ == "__main__":
    main()
