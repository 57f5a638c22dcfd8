"""Host tools benchmarks (run by hand; prints medians).

    python benchmarks/tools.py            # both parts
    python benchmarks/tools.py --quick    # fewer iterations

1. Round trip of a no-op host tool call from each guest language: a cell making N calls,
   minus the same cell's loop without them, per call.
2. Code mode against tool-by-tool: an agent task (find the bug issues on a tracker, then
   count each one's comments) done as one execute_code program calling the bridged tools,
   against the N separate MCP calls a model would otherwise make to the tracker itself. Both
   go through the official MCP client over stdio; printed are the wall time and the bytes of
   tool results sent to the client (what fills the model's context).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LLM_WASM_SANDBOX_HOME", tempfile.mkdtemp(prefix="llm-wasm-sandbox-bench-"))

from mcp.client import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from sandbox import ExecutionPolicy, RuntimeType, create_sandbox

_REPO = Path(__file__).resolve().parents[1]
_TRACKER = str(_REPO / "tests" / "bridged_mcp_server.py")
_LOOPS = {
    RuntimeType.PYTHON: (
        "from sandbox_tools import noop\nfor _ in range({n}):\n    noop()",
        "for _ in range({n}):\n    pass",
    ),
    RuntimeType.JAVASCRIPT: (
        "for (let i = 0; i < {n}; i++) tools.noop()",
        "for (let i = 0; i < {n}; i++) {{}}",
    ),
}
_PROGRAM = (
    "from mcp_tools.tracker import search_issues, issue_comments\n"
    "bugs = search_issues(query='bug')\n"
    "print({i['number']: issue_comments(number=i['number']) for i in bugs})"
)


def noop() -> None:
    """Does nothing: the cost measured is the call's."""


def round_trips(repeats: int, calls: int) -> None:
    print(f"no-op host tool call, round trip ({calls} calls a cell, median of {repeats} cells)")
    for runtime, (with_calls, without) in _LOOPS.items():
        policy = ExecutionPolicy(tool_max_calls=calls)
        with create_sandbox(runtime, policy=policy, tools=[noop]) as sandbox:
            sandbox.execute(with_calls.format(n=10))  # warm: the tool list, the first worker
            per_call = []
            for _ in range(repeats):
                started = time.perf_counter()
                result = sandbox.execute(with_calls.format(n=calls))
                spent = time.perf_counter() - started
                assert result.success, result.stderr
                started = time.perf_counter()
                sandbox.execute(without.format(n=calls))
                baseline = time.perf_counter() - started
                per_call.append((spent - baseline) / calls * 1e6)
        print(f"  {runtime.value:<10} {statistics.median(per_call):8.1f} us per call")


async def _result_bytes(session: ClientSession, tool: str, arguments: dict[str, object]) -> int:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


async def code_mode(repeats: int) -> None:
    home = tempfile.mkdtemp(prefix="llm-wasm-sandbox-bench-")
    servers = Path(home) / "servers.json"
    servers.write_text(
        json.dumps({"mcpServers": {"tracker": {"command": sys.executable, "args": [_TRACKER]}}})
    )
    env = {"LLM_WASM_SANDBOX_HOME": home, **_cache_env()}
    ours = StdioServerParameters(
        command=sys.executable,
        args=["-m", "sandbox.mcp.server", "--bridge", str(servers)],
        env=env,
        cwd=str(_REPO),
    )
    tracker = StdioServerParameters(command=sys.executable, args=[_TRACKER])
    async with (
        stdio_client(ours) as (read, write),
        ClientSession(read, write) as sandbox,
        stdio_client(tracker) as (tread, twrite),
        ClientSession(tread, twrite) as direct,
    ):
        await sandbox.initialize()
        await direct.initialize()
        await _result_bytes(sandbox, "execute_code", {"code": _PROGRAM, "language": "python"})
        one, separate = [], []
        one_bytes = separate_bytes = 0
        for _ in range(repeats):
            started = time.perf_counter()
            one_bytes = await _result_bytes(
                sandbox, "execute_code", {"code": _PROGRAM, "language": "python"}
            )
            one.append(time.perf_counter() - started)
            started = time.perf_counter()
            listing = await direct.call_tool("search-issues", {"query": "bug"})
            separate_bytes = len(listing.model_dump_json(by_alias=True, exclude_none=True))
            issues = (listing.structured_content or {}).get("result", [])
            for issue in issues:
                separate_bytes += await _result_bytes(
                    direct, "issue_comments", {"number": issue["number"]}
                )
            separate.append(time.perf_counter() - started)
    calls = 1 + len(issues)
    print("agent task: bug issues and their comment counts (median of", repeats, "runs)")
    print(
        f"  code mode, 1 execute_code:  {statistics.median(one) * 1000:7.1f} ms, "
        f"{one_bytes} bytes to the client"
    )
    print(
        f"  tool by tool, {calls} MCP calls: {statistics.median(separate) * 1000:7.1f} ms, "
        f"{separate_bytes} bytes to the client (and {calls} model turns)"
    )


def _cache_env() -> dict[str, str]:
    name = "LLM_WASM_SANDBOX_CACHE_DIR"
    return {name: os.environ[name]} if name in os.environ else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    repeats = 5 if args.quick else 15
    round_trips(repeats, 200 if args.quick else 1000)
    asyncio.run(code_mode(repeats))


if __name__ == "__main__":
    main()
