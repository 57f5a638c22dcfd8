"""Latency of execute_code("print(1)") through the MCP server over stdio, with the real client.

    python benchmarks/mcp_latency.py [--calls 300]

Starts `python -m sandbox.mcp.server` as a subprocess, drives it with the official `mcp`
ClientSession, and prints the median and p95 round trip per language (default sessions, so
the interpreter stays live between calls), next to the in-process execute() for the same cell.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import anyio
from mcp.client import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from sandbox import create_sandbox

CELLS = {"python": "print(1)", "javascript": "console.log(1)"}


def _summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {statistics.median(samples) * 1000:7.3f} ms   p95 {p95 * 1000:7.3f} ms"


async def _over_mcp(calls: int) -> dict[str, list[float]]:
    server = StdioServerParameters(
        command=sys.executable,
        # A benchmark client calls far faster than the default per-client rate limit allows.
        args=["-m", "sandbox.mcp.server"],  # stdio is not rate limited
        env={"LLM_WASM_SANDBOX_HOME": tempfile.mkdtemp(prefix="mcp-bench-")},
    )
    samples: dict[str, list[float]] = {}
    async with stdio_client(server) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        for language, code in CELLS.items():
            arguments = {"code": code, "language": language}
            await client.call_tool("execute_code", arguments)  # creates the default session
            timings = []
            for _ in range(calls):
                started = time.perf_counter()
                result = await client.call_tool("execute_code", arguments)
                timings.append(time.perf_counter() - started)
                assert not result.is_error
            samples[language] = timings
    return samples


def _in_process(calls: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    for language, code in CELLS.items():
        with create_sandbox(language) as sandbox:
            sandbox.execute(code)
            timings = []
            for _ in range(calls):
                started = time.perf_counter()
                sandbox.execute(code)
                timings.append(time.perf_counter() - started)
        samples[language] = timings
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    mcp = anyio.run(_over_mcp, args.calls)
    local = _in_process(args.calls)
    print(f"execute_code over MCP stdio vs in-process execute(), {args.calls} calls each")
    for language in CELLS:
        ratio = statistics.median(mcp[language]) / statistics.median(local[language])
        print(f"{language:10s} MCP stdio   {_summary(mcp[language])}")
        print(f"{language:10s} in-process  {_summary(local[language])}   MCP overhead {ratio:.1f}x")


if __name__ == "__main__":
    main()
