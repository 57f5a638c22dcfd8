"""One cell's tool calls: the caps, the checks, the calls and the record in metadata.

Made per execute() call and handed to the guest through ``CellLimits.tools``; the guest's
thread asks it inside a host call (``sandbox/host/tool_channel.py``), so nothing here may
raise into the guest: every failure is an answer the guest turns into an exception.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_jsonable_python

from sandbox.host.tool_channel import ToolReply, failure
from sandbox.tools.registry import HostTool, ToolArgumentError
from sandbox.tools.runner import DeadlineExceeded, run_tool

# Refused calls recorded beyond the max_calls that ran: a guest retrying in a loop would
# otherwise grow the record (and the result's metadata) with every attempt until its deadline.
MAX_REFUSALS_RECORDED = 20


@dataclass(frozen=True)
class ToolLimits:
    """Per-cell caps (ExecutionPolicy.tool_max_calls, tool_max_argument_bytes, ...)."""

    max_calls: int
    max_argument_bytes: int
    max_result_bytes: int


class CellTools:
    """The ToolHandler of one cell."""

    def __init__(self, tools: dict[str, HostTool], limits: ToolLimits) -> None:
        self._tools = tools
        self._limits = limits
        self._calls = 0
        self._argument_bytes = 0
        self._result_bytes = 0
        self.records: list[dict[str, Any]] = []
        self.unrecorded = 0  # calls past the record's cap: counted only

    @property
    def request_cap(self) -> int:
        return max(0, self._limits.max_argument_bytes - self._argument_bytes)

    def admit(self, length: int) -> ToolReply | None:
        if length <= self.request_cap:
            return None
        message = (
            f"the tool call's request is {length} bytes, over the {self.request_cap} bytes "
            f"of arguments this cell may still send (ExecutionPolicy.tool_max_argument_bytes="
            f"{self._limits.max_argument_bytes})"
        )
        self._record("?", 0.0, "limit", length, 0)
        return ToolReply(failure("limit", message, "ToolLimitError"))

    def handle(self, request: bytes, deadline: float) -> ToolReply:
        try:
            return self._handle(request, deadline)
        except Exception as error:  # a bug here must reach the guest as an answer, not a raise
            return ToolReply(failure("protocol", f"the host could not answer ({error})"))

    def _handle(self, request: bytes, deadline: float) -> ToolReply:
        try:
            message = json.loads(request)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            return ToolReply(failure("protocol", "a tool request is a JSON object"))
        if message.get("op") == "list":
            described = [tool.describe() for tool in self._tools.values()]
            return ToolReply(json.dumps({"ok": True, "value": described}).encode())
        name = message.get("name")
        tool = self._tools.get(name) if isinstance(name, str) else None
        if tool is None:
            offered = ", ".join(sorted(self._tools)) or "none"
            return ToolReply(
                failure("unknown_tool", f"no tool named {name!r}; this sandbox has: {offered}")
            )
        if self._calls >= self._limits.max_calls:
            self._record(tool.name, 0.0, "limit", len(request), 0)
            return ToolReply(
                failure(
                    "limit",
                    f"this cell has made its {self._limits.max_calls} tool calls "
                    "(ExecutionPolicy.tool_max_calls); do the rest in the next call",
                    "ToolLimitError",
                )
            )
        self._calls += 1
        self._argument_bytes += len(request)
        args, kwargs = message.get("args") or [], message.get("kwargs") or {}
        started = time.monotonic()
        try:
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise ToolArgumentError(f"{tool.name}(): malformed arguments")
            positional, keywords = tool.bind(args, kwargs)
        except ToolArgumentError as error:
            self._record(tool.name, 0.0, "invalid_arguments", len(request), 0)
            return ToolReply(failure("invalid_arguments", str(error), "ToolArgumentError"))
        try:
            value = run_tool(tool.function, positional, keywords, deadline - started)
        except DeadlineExceeded:
            self._record(tool.name, _since(started), "timeout", len(request), 0)
            return ToolReply(failure("timeout", f"{tool.name} ran past the cell's deadline"), True)
        except Exception as error:
            self._record(tool.name, _since(started), "tool_error", len(request), 0)
            return ToolReply(failure("tool_error", _message(error), type(error).__name__))
        try:
            payload = json.dumps(
                {"ok": True, "value": to_jsonable_python(value)}, allow_nan=False
            ).encode()
        except (TypeError, ValueError) as error:
            self._record(tool.name, _since(started), "tool_error", len(request), 0)
            return ToolReply(
                failure(
                    "tool_error", f"the result of {tool.name} is not JSON ({error})", "TypeError"
                )
            )
        left = self._limits.max_result_bytes - self._result_bytes
        if len(payload) > left:
            self._record(tool.name, _since(started), "limit", len(request), 0)
            return ToolReply(
                failure(
                    "limit",
                    f"the result of {tool.name} is {len(payload)} bytes, over the {left} bytes "
                    "of results this cell may still receive (ExecutionPolicy."
                    f"tool_max_result_bytes={self._limits.max_result_bytes})",
                    "ToolLimitError",
                )
            )
        self._result_bytes += len(payload)
        self._record(tool.name, _since(started), None, len(request), len(payload))
        return ToolReply(payload)

    def _record(
        self, name: str, duration_ms: float, error: str | None, sent: int, received: int
    ) -> None:
        if len(self.records) >= self._limits.max_calls + MAX_REFUSALS_RECORDED:
            self.unrecorded += 1
            return
        self.records.append(
            {
                "name": name,
                "ok": error is None,
                "error": error,
                "duration_ms": round(duration_ms, 3),
                "argument_bytes": sent,
                "result_bytes": received,
            }
        )


def _message(error: Exception) -> str:
    """The exception's text as its constructor got it (a KeyError's str() adds quotes)."""
    if len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error)


def _since(started: float) -> float:
    return (time.monotonic() - started) * 1000
