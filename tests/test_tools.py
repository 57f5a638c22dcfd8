"""Guest code calls host tools: create_sandbox(tools=...), in real Python and JavaScript guests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from sandbox import ExecutionPolicy, RuntimeType, Sandbox, create_sandbox

_released = threading.Event()


def get_weather(city: str, days: int = 1) -> dict[str, object]:
    """The forecast for a city.

    Args:
        city: The city's name.
        days: How many days ahead.
    """
    return {"city": city, "days": days, "temp_c": 21}


async def add(a: int, b: int) -> int:
    """Adds two numbers, after a pause (an async tool)."""
    await asyncio.sleep(0.001)
    return a + b


class QuotaExceeded(Exception):
    pass


def fail(kind: str) -> None:
    if kind == "value":
        raise ValueError("no forecast for Atlantis")
    raise QuotaExceeded("the weather API quota is used up")


def hang() -> None:
    _released.wait(60)


def big(size: int) -> str:
    return "x" * size


TOOLS = [get_weather, add, fail, hang, big]
# (runtime, code) per operation: the same calls spelled in each guest language.
CALLS = {
    RuntimeType.PYTHON: {
        "weather": "from sandbox_tools import get_weather\n"
        "print(get_weather('Paris')['city'], get_weather(city='Rome', days=3)['days'])",
        "async": "import sandbox_tools\nprint(sandbox_tools.add(2, b=40))",
        "bad": "from sandbox_tools import get_weather\nget_weather(city=5)",
        "value_error": "import sandbox_tools\n"
        "try:\n    sandbox_tools.fail('value')\nexcept ValueError as e:\n    print('caught', e)",
        "custom": "import sandbox_tools\nsandbox_tools.fail('quota')",
        "unknown": "import sandbox_tools\nsandbox_tools.nope()",
        "hang": "import sandbox_tools\nsandbox_tools.hang()",
        "after": "print('alive')",
        "loop": "import sandbox_tools\nfor i in range(5):\n    sandbox_tools.add(i, 1)",
        "big": "import sandbox_tools\nsandbox_tools.big(2000)",
        "big_argument": "import sandbox_tools\nsandbox_tools.get_weather('x' * 5000)",
    },
    RuntimeType.JAVASCRIPT: {
        "weather": 'console.log(tools.get_weather({city: "Paris"}).city, '
        'tools.get_weather("Rome", 3).days)',
        "async": "console.log(await tools.add({a: 2, b: 40}))",
        "bad": "tools.get_weather({city: 5})",
        "value_error": 'try { tools.fail("value") } catch (e) { '
        'console.log("caught", e.name === "ValueError" && e instanceof ToolError, e.message) }',
        "custom": 'tools.fail("quota")',
        "unknown": "tools.nope()",
        "hang": "tools.hang()",
        "after": 'console.log("alive")',
        "loop": "for (let i = 0; i < 5; i++) tools.add({a: i, b: 1})",
        "big": "tools.big(2000)",
        "big_argument": 'tools.get_weather("x".repeat(5000))',
    },
}


@pytest.fixture(scope="module", autouse=True)
def _release_hung_tools() -> Iterator[None]:
    yield
    _released.set()  # the worker a hung tool kept ends with the tests


@pytest.fixture(scope="module", params=[RuntimeType.PYTHON, RuntimeType.JAVASCRIPT])
def tooled(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    policy = ExecutionPolicy(
        timeout_seconds=1.5,
        tool_max_calls=3,
        tool_max_result_bytes=1000,
        tool_max_argument_bytes=1000,
    )
    with create_sandbox(request.param, policy=policy, tools=TOOLS) as sandbox:
        yield sandbox


def _run(sandbox: Sandbox, name: str) -> tuple[str, str, dict[str, object]]:
    result = sandbox.execute(CALLS[sandbox.runtime][name])
    return result.stdout, result.stderr, result.metadata


def test_sync_tool_with_keyword_and_positional_arguments(tooled: Sandbox) -> None:
    stdout, stderr, metadata = _run(tooled, "weather")
    assert stdout == "Paris 3\n", stderr
    calls = metadata["tool_calls"]
    assert isinstance(calls, list) and [call["name"] for call in calls] == ["get_weather"] * 2
    assert all(call["ok"] and call["result_bytes"] > 0 for call in calls)
    assert metadata["files"] == []  # the JavaScript request file is the driver's, hidden


def test_async_tool(tooled: Sandbox) -> None:
    stdout, stderr, _ = _run(tooled, "async")
    assert stdout == "42\n", stderr


def test_schema_error_names_the_argument(tooled: Sandbox) -> None:
    _, stderr, metadata = _run(tooled, "bad")
    assert "ToolArgumentError" in stderr and "argument 'city'" in stderr
    assert "valid string" in stderr
    assert metadata["tool_calls"] == [
        {
            "name": "get_weather",
            "ok": False,
            "error": "invalid_arguments",
            "duration_ms": 0.0,
            "argument_bytes": metadata["tool_calls"][0]["argument_bytes"],  # type: ignore[index]
            "result_bytes": 0,
        }
    ]


def test_tool_exceptions_keep_type_and_message_not_the_host_traceback(tooled: Sandbox) -> None:
    stdout, stderr, _ = _run(tooled, "value_error")
    assert stdout.startswith("caught") and "no forecast for Atlantis" in stdout, stderr
    _, stderr, _ = _run(tooled, "custom")
    assert "QuotaExceeded" in stderr and "the weather API quota is used up" in stderr
    assert "test_tools.py" not in stderr and "sandbox_tools.py" not in stderr


def test_only_given_tools_can_be_called(tooled: Sandbox) -> None:
    _, stderr, _ = _run(tooled, "unknown")
    assert "nope" in stderr and "get_weather" in stderr  # names what the sandbox offers


def test_call_cap_per_cell(tooled: Sandbox) -> None:
    _, stderr, metadata = _run(tooled, "loop")
    assert "ToolLimitError" in stderr and "tool_max_calls" in stderr
    calls = metadata["tool_calls"]
    assert isinstance(calls, list) and [call["error"] for call in calls] == [None] * 3 + ["limit"]


def test_result_and_argument_bytes_caps(tooled: Sandbox) -> None:
    _, stderr, _ = _run(tooled, "big")
    assert "ToolLimitError" in stderr and "tool_max_result_bytes" in stderr
    _, stderr, metadata = _run(tooled, "big_argument")
    assert "ToolLimitError" in stderr and "tool_max_argument_bytes" in stderr
    assert metadata["tool_calls"][0]["error"] == "limit"  # type: ignore[index]


def test_hanging_tool_ends_the_cell_as_timeout(tooled: Sandbox) -> None:
    result = tooled.execute(CALLS[tooled.runtime]["hang"])
    assert result.metadata["trap_reason"] == "timeout"
    assert result.metadata["tool_calls"][0]["error"] == "timeout"  # type: ignore[index]
    assert tooled.execute(CALLS[tooled.runtime]["after"]).stdout == "alive\n"


def test_python_guest_lists_and_documents_its_tools() -> None:
    with create_sandbox(RuntimeType.PYTHON, tools={"forecast": get_weather}) as sandbox:
        result = sandbox.execute(
            "import sandbox_tools\n"
            "[entry] = sandbox_tools.list()\n"
            "print(entry['signature'])\n"
            "print(entry['parameters']['properties']['city']['description'])\n"
            "print(sandbox_tools.forecast.__doc__.splitlines()[2])"
        )
        assert result.stdout.splitlines() == [
            "forecast(city: str, days: int = 1) -> dict[str, object]",
            "The city's name.",
            "The forecast for a city.",
        ], result.stderr


def test_a_sandbox_without_tools_refuses_tool_calls(runtime: RuntimeType) -> None:
    code = (
        "import sandbox_tools\nsandbox_tools.anything()"
        if runtime is RuntimeType.PYTHON
        else ("tools.anything()")
    )
    with create_sandbox(runtime) as sandbox:
        result = sandbox.execute(code)
    assert not result.success and "no host tools" in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ({"not a name": get_weather}, "not a Python identifier"),
        ({"list": get_weather}, "reserved"),
        ([lambda: 1], "not a Python identifier"),
        ({"f": lambda *args: 1}, r"\*args and \*\*kwargs"),
        ({"f": 42}, "must be callable"),
        ("get_weather", "list of functions or a mapping"),
    ],
)
def test_bad_tools_are_refused_with_the_reason(tools: object, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        create_sandbox(RuntimeType.JAVASCRIPT, tools=tools)  # type: ignore[arg-type]
