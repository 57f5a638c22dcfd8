"""Soak test: does the process stay flat over many interpreters?

    python benchmarks/soak.py [--n 1000] [--quick] [--sections python javascript ...]

Each section runs ``--n`` cycles and prints, at checkpoints (after the first 100 cycles, then
every 200, and at the end), the resident set size, open file descriptors (and how many of them
point at deleted files, which still take disk space), threads, live ``wasmtime.Store`` objects
and the guest control directories the process has open (one per live guest). Sections:

* ``python``, ``javascript``: ``create_sandbox()`` + ``execute()`` + ``close()``;
* ``python-exit``: one sandbox whose every call ends its interpreter with ``os._exit(3)``,
  so each call boots a fresh one (a limit-stop reset);
* ``javascript-fuel``: the same with a JavaScript cell that runs out of fuel;
* ``mcp``: ``create_session`` + ``execute_code`` + ``destroy_session`` against the
  ``llm-wasm-mcp`` server over stdio (the official ``mcp`` client); figures are the server's;
* ``checkpoints`` (not run by default): one Python sandbox with undo on; each cycle runs a
  cell, checkpoints, evicts the interpreter (the checkpoint goes to disk), restores, undoes
  and deletes the checkpoint;
* ``cancel`` (not run by default): one JavaScript sandbox; each cycle starts an endless
  printing loop and cancels it from its first output (a fresh interpreter every call);
* ``mcp-checkpoints`` (not run by default): over MCP, ``create_session`` + ``execute_code``
  + ``checkpoint_session`` + ``restore_session`` + ``undo_last_cell`` + ``fork_session``,
  then both sessions destroyed.

A section passes when its RSS at the end is within ``--budget-mb`` of its first checkpoint;
the exit status is 1 if any section fails.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

# Before importing sandbox (warm pools are keyed by the sessions root): thousands of throwaway
# sessions go to a temporary home, removed at exit after the sandbox's own exit clean-up.
_HOME = tempfile.mkdtemp(prefix="llm-wasm-soak-")
os.environ["LLM_WASM_SANDBOX_HOME"] = _HOME
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)

import anyio  # noqa: E402
import wasmtime  # noqa: E402
from mcp.client import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

import sandbox as sandbox_package  # noqa: E402
from sandbox import CellControl, ExecutionPolicy, RuntimeType, create_sandbox  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SECTIONS = ("python", "javascript", "python-exit", "javascript-fuel", "mcp")
SECTIONS = (*DEFAULT_SECTIONS, "checkpoints", "cancel", "mcp-checkpoints")
_CELLS = {RuntimeType.PYTHON: "x = 1", RuntimeType.JAVASCRIPT: "let x = 1;"}
_CONTROL_PREFIX = "llm-wasm-sandbox-control-"


@dataclass(frozen=True)
class Sample:
    """What one process looks like at one checkpoint."""

    rss_mib: float
    fds: int
    deleted_fds: int
    threads: int
    stores: int | None  # live wasmtime.Store objects (in this process only)
    control_dirs: int  # guest control directories the process has open


def _status_field(pid: int | str, name: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{name} not in /proc/{pid}/status")


def _open_paths(pid: int | str) -> list[str]:
    """What the open descriptors of ``pid`` point at."""
    directory = f"/proc/{pid}/fd"
    paths = []
    for name in os.listdir(directory):
        try:
            paths.append(os.readlink(f"{directory}/{name}"))
        except OSError:
            continue  # closed while we looked (or the listing's own descriptor)
    return paths


def _control_dirs(paths: list[str]) -> int:
    """Guest control directories that these open paths are in (one per live guest)."""
    found = set()
    for path in paths:
        for part in Path(path.removesuffix(" (deleted)")).parts:
            if part.startswith(_CONTROL_PREFIX):
                found.add(part)
    return len(found)


def _live_stores() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, wasmtime.Store))


def sample(pid: int | str = "self") -> Sample:
    paths = _open_paths(pid)
    return Sample(
        rss_mib=_status_field(pid, "VmRSS") / 1024,
        fds=len(paths),
        deleted_fds=sum(path.endswith(" (deleted)") for path in paths),
        threads=_status_field(pid, "Threads"),
        stores=_live_stores() if pid == "self" else None,
        control_dirs=_control_dirs(paths),
    )


def checkpoints(n: int, first: int, every: int) -> list[int]:
    """Cycle counts to sample at: ``first``, then every ``every``, and always ``n``."""
    points = list(range(min(first, n), n, every))
    return [*points, n] if not points or points[-1] != n else points


class Report:
    """Prints one section's checkpoints and judges its growth."""

    def __init__(self, section: str, budget_mib: float) -> None:
        self.section = section
        self.budget_mib = budget_mib
        self.started = time.perf_counter()
        self.first: Sample | None = None
        self.last: Sample | None = None

    def add(self, cycles: int, point: Sample) -> None:
        self.first = self.first or point
        self.last = point
        stores = "-" if point.stores is None else str(point.stores)
        print(
            f"  {self.section:16s} {cycles:6d} cycles  RSS {point.rss_mib:8.1f} MiB  "
            f"fds {point.fds:4d} (deleted {point.deleted_fds:3d})  threads {point.threads:3d}  "
            f"stores {stores:>4s}  control dirs {point.control_dirs:4d}  "
            f"{time.perf_counter() - self.started:7.1f} s",
            flush=True,
        )

    def passed(self) -> bool:
        assert self.first is not None and self.last is not None
        growth = self.last.rss_mib - self.first.rss_mib
        ok = growth <= self.budget_mib
        verdict = "ok" if ok else "FAIL"
        print(
            f"  {self.section:16s} growth after first checkpoint {growth:+.1f} MiB "
            f"(budget {self.budget_mib:.0f}): {verdict}",
            flush=True,
        )
        return ok


def _create_execute_close(runtime: RuntimeType) -> None:
    with create_sandbox(runtime) as sandbox:
        result = sandbox.execute(_CELLS[runtime])
        assert result.success, result.stderr


@contextlib.contextmanager
def _limit_stops(runtime: RuntimeType) -> Iterator[Callable[[], None]]:
    """A cycle that stops one sandbox's interpreter, so that each call boots a fresh one."""
    if runtime is RuntimeType.PYTHON:
        policy, code = ExecutionPolicy(), "import os; os._exit(3)"
    else:
        policy, code = ExecutionPolicy(fuel_budget=20_000_000), "for (;;) {}"
    with create_sandbox(runtime, policy) as sandbox:

        def cycle() -> None:
            result = sandbox.execute(code)
            assert result.metadata.get("session_reset"), result.metadata

        yield cycle


@contextlib.contextmanager
def _checkpoint_cycles() -> Iterator[Callable[[], None]]:
    """Checkpoint, evict (its pages go to disk), restore, undo, delete: nothing may pile up."""
    with create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(undo_last_cell=True)) as sandbox:
        assert sandbox.execute("import numpy as np\ndata = np.arange(100_000)").success

        def cycle() -> None:
            assert sandbox.execute("data = data + 1").success
            checkpoint = sandbox.checkpoint()
            assert sandbox.evict("soak")
            sandbox.restore(checkpoint)
            assert sandbox.execute("data = data - 1").success
            sandbox.undo()
            sandbox.delete_checkpoint(checkpoint)

        yield cycle


@contextlib.contextmanager
def _cancelled_cells() -> Iterator[Callable[[], None]]:
    """A call cancelled from its own first output, as a client disconnecting mid-stream."""
    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:

        def cycle() -> None:
            control = CellControl(lambda stream, text: control.cancel())
            result = sandbox.execute("for (let i = 0; ; i++) console.log(i);", control=control)
            assert result.metadata.get("trap_reason") == "cancelled", result.metadata

        yield cycle


def _run_local(section: str, points: list[int], budget_mib: float) -> bool:
    runtime = RuntimeType.JAVASCRIPT if section.startswith("javascript") else RuntimeType.PYTHON
    with contextlib.ExitStack() as stack:
        if section in ("python", "javascript"):
            cycle: Callable[[], None] = lambda: _create_execute_close(runtime)  # noqa: E731
        elif section == "checkpoints":
            cycle = stack.enter_context(_checkpoint_cycles())
        elif section == "cancel":
            cycle = stack.enter_context(_cancelled_cells())
        else:
            cycle = stack.enter_context(_limit_stops(runtime))
        report = Report(section, budget_mib)
        done = 0
        for point in points:
            while done < point:
                cycle()
                done += 1
            report.add(done, sample())
    return report.passed()


def _mcp_server() -> StdioServerParameters:
    """The llm-wasm-mcp server of this checkout, on stdio (which is not rate limited)."""
    script = Path(sys.executable).with_name("llm-wasm-mcp")
    command, args = (
        (str(script), []) if script.exists() else (sys.executable, ["-m", "sandbox.mcp.server"])
    )
    return StdioServerParameters(
        command=command,
        args=list(args),
        env={
            "LLM_WASM_SANDBOX_HOME": str(Path(_HOME) / "mcp-server"),
            "PYTHONPATH": str(REPO),  # this checkout's sandbox package, not another install
            **{k: v for k, v in os.environ.items() if k == "LLM_WASM_SANDBOX_CACHE_DIR"},
        },
        cwd=REPO,
    )


def _server_pid(command: str) -> int:
    """The pid of our child process started as ``command`` (the client does not expose it)."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me and any(part.decode(errors="replace") == command for part in cmdline):
            return int(entry.name)
    raise RuntimeError(f"cannot find the MCP server process ({command})")


async def _call(client: ClientSession, tool: str, **arguments: object) -> dict[str, object]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error and result.structured_content is not None, result
    return result.structured_content


async def _mcp_checkpoint_cycle(client: ClientSession, language: str) -> None:
    session_id = (await _call(client, "create_session", language=language))["session_id"]
    await _call(client, "execute_code", session_id=session_id, code=_CELLS[RuntimeType(language)])
    made = await _call(client, "checkpoint_session", session_id=session_id, label="soak")
    assert made["checkpoint"] is not None
    await _call(client, "execute_code", session_id=session_id, code="1")
    await _call(client, "restore_session", session_id=session_id, checkpoint="soak")
    await _call(client, "execute_code", session_id=session_id, code="2")
    await _call(client, "undo_last_cell", session_id=session_id)
    fork = (await _call(client, "fork_session", session_id=session_id))["session_id"]
    for gone in (fork, session_id):
        await _call(client, "destroy_session", session_id=gone)


async def _mcp_cycle(client: ClientSession, language: str) -> None:
    created = await client.call_tool("create_session", {"language": language})
    assert not created.is_error and created.structured_content, created
    session_id = created.structured_content["session_id"]
    code = _CELLS[RuntimeType(language)]
    ran = await client.call_tool(
        "execute_code", {"code": code, "language": language, "session_id": session_id}
    )
    assert not ran.is_error, ran
    gone = await client.call_tool("destroy_session", {"session_id": session_id})
    assert not gone.is_error, gone


async def _run_mcp(section: str, n: int, points: list[int], budget_mib: float) -> bool:
    report = Report(section, budget_mib)
    cycle = _mcp_checkpoint_cycle if section == "mcp-checkpoints" else _mcp_cycle
    server = _mcp_server()
    async with stdio_client(server) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        pid = _server_pid(server.command)
        done = 0
        for point in points:
            while done < point:
                await cycle(client, ("python", "javascript")[done % 2])
                done += 1
            report.add(done, sample(pid))
    return report.passed()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="cycles per section (default 1000)")
    parser.add_argument(
        "--quick", action="store_true", help="a short run: 100 cycles, checkpoints every 20"
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(DEFAULT_SECTIONS),
        help=f"default: {' '.join(DEFAULT_SECTIONS)}",
    )
    parser.add_argument(
        "--budget-mb",
        type=float,
        default=50.0,
        help="allowed RSS growth (MiB) from a section's first checkpoint to its end",
    )
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be at least 1")
    n, first, every = (100, 20, 20) if args.quick else (args.n, 100, 200)
    points = checkpoints(n, first, every)
    print(
        f"soak: {n} cycles per section; start RSS {sample().rss_mib:.1f} MiB; "
        f"sandbox from {Path(sandbox_package.__file__).parent}, wasmtime {metadata.version('wasmtime')}",
        flush=True,
    )
    results = []
    for section in args.sections:
        if section.startswith("mcp"):
            results.append(anyio.run(_run_mcp, section, n, points, args.budget_mb))
        else:
            results.append(_run_local(section, points, args.budget_mb))
    print(f"threads alive in this process: {sorted(t.name for t in threading.enumerate())}")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
