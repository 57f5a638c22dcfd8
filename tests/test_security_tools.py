"""Hostile guests against host tools: requests of hostile size, shape and number.

The host answers a tool request on the guest's thread inside a host call, so the request is
guest-controlled data the host parses, and every refusal is a record in the result. Neither
may grow with how long the guest keeps trying (before the fix, a guest retrying a refused call
for 1.5 s put 16,094 records, 1.7 MB, into one result's metadata).
"""

from __future__ import annotations

import pytest

from sandbox import ExecutionPolicy, RuntimeType, create_sandbox
from sandbox.tools.cell import MAX_REFUSALS_RECORDED


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


_RETRY = {
    RuntimeType.PYTHON: """
import sandbox_tools, time
n, end = 0, time.monotonic() + 0.5
while time.monotonic() < end:
    try:
        sandbox_tools.add(1, 2)
    except Exception:
        pass
    n += 1
print(n)
""",
    RuntimeType.JAVASCRIPT: """
let n = 0;
const end = Date.now() + 500;
while (Date.now() < end) {
  try { tools.add({a: 1, b: 2}); } catch (e) {}
  n += 1;
}
console.log(n);
""",
}


@pytest.mark.parametrize("runtime", [RuntimeType.PYTHON, RuntimeType.JAVASCRIPT])
def test_refused_tool_calls_do_not_grow_the_record(runtime: RuntimeType) -> None:
    policy = ExecutionPolicy(tool_max_calls=3)
    with create_sandbox(runtime=runtime, policy=policy, tools=[add]) as sandbox:
        result = sandbox.execute(_RETRY[runtime])
        attempts = int(result.stdout.strip())
        records = result.metadata["tool_calls"]
        assert attempts > len(records) + 10, (attempts, result.stderr)
        assert len(records) == 3 + MAX_REFUSALS_RECORDED
        assert [r["ok"] for r in records[:3]] == [True, True, True]
        assert {r["error"] for r in records[3:]} == {"limit"}
        assert result.metadata["tool_calls_unrecorded"] == attempts - len(records)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"[" * 200_000 + b"]" * 200_000,  # nesting deeper than the host's JSON parser goes
        b'{"op": "call", "name": "add", "args": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        b'{"op": "call", "name": "add", "args": {"a": 1}, "kwargs": []}',
        b'{"op": "call", "name": ["add"]}',
        b"\xff\xfe not json",
    ],
)
def test_malformed_tool_requests_are_answered(request_bytes: bytes) -> None:
    """Garbage a guest sends straight through the door gets an answer, never a host raise."""
    code = (
        "import _host, json\n"
        f"raw = _host.call(b'\\x00tool ' + {request_bytes!r})\n"
        "print(json.loads(raw)['kind'])\n"
        "again = {'op': 'call', 'name': 'add', 'args': [1, 2]}\n"
        "print(json.loads(_host.call(b'\\x00tool ' + json.dumps(again).encode()))['value'])"
    )
    with create_sandbox(runtime=RuntimeType.PYTHON, tools=[add]) as sandbox:
        result = sandbox.execute(code)
        assert result.success, result.stderr
        kind, value = result.stdout.split()
        assert kind in {"protocol", "invalid_arguments", "unknown_tool"}
        assert value == "3"  # the host still answers the next call
