"""Host tools: functions the embedder offered this sandbox, called like ordinary functions.

    from sandbox_tools import get_weather
    get_weather("Paris")                     # or get_weather(city="Paris")
    import sandbox_tools; sandbox_tools.list()   # [{"name", "description", "parameters"}]
    help(get_weather)                        # its signature, docstring and JSON schema

Arguments and results cross as JSON (str, int, float, bool, None, lists, dicts). The host
checks the arguments against the tool's signature before it runs: a bad call raises
ToolArgumentError (a TypeError) naming the argument. An exception the tool raises comes back
with its type and message: a built-in type (ValueError, KeyError, ...) as itself, any other as
a ToolError subclass of the same name. Each cell may make a limited number of calls, with
limited argument and result bytes (ToolLimitError); time in a tool counts against the cell's
deadline. Tools of bridged MCP servers are in ``mcp_tools`` (``from mcp_tools.github import
search_issues``).
"""

from __future__ import annotations  # `list` is also this module's function

import builtins
import json
from typing import Any

import _host

_REQUEST = b"\x00tool "


class ToolError(Exception):
    """A host tool failed; ``type`` names the host exception's type."""

    type = "ToolError"


class ToolArgumentError(ToolError, TypeError):
    """The host refused the call's arguments (missing, unknown or of the wrong type)."""


class ToolLimitError(ToolError):
    """A per-cell tool limit was reached (calls, argument or result bytes)."""


class ToolTimeoutError(ToolError, TimeoutError):
    """The tool ran into the cell's deadline."""


_KINDS = {
    "invalid_arguments": ToolArgumentError,
    "limit": ToolLimitError,
    "timeout": ToolTimeoutError,
}
_named: dict[str, type[ToolError]] = {}


def _error(answer: dict[str, Any]) -> BaseException:
    """The exception the guest sees for a failed call, without the host's traceback."""
    kind, name = answer.get("kind"), str(answer.get("type") or "ToolError")
    message = str(answer.get("message", ""))
    if kind in _KINDS:
        return _KINDS[kind](message)
    if kind == "tool_error":
        builtin = getattr(builtins, name, None)
        if isinstance(builtin, type) and issubclass(builtin, Exception):
            try:
                made: BaseException = builtin(message)
                return made
            except Exception:
                pass
        if name not in _named:
            safe = name if name.isidentifier() else "ToolError"
            _named[name] = type(safe, (ToolError,), {"__module__": __name__, "type": name})
        return _named[name](message)
    return ToolError(message)


def _ask(request: dict[str, Any]) -> object:
    try:
        payload = json.dumps(request, allow_nan=False)
    except (TypeError, ValueError) as error:
        what = request.get("name", "the tool")
        raise ToolArgumentError(f"{what}(): arguments must be JSON values ({error})") from None
    try:
        raw = _host.call(_REQUEST + payload.encode("utf-8", errors="surrogatepass"))
        answer = json.loads(raw)
    except Exception as error:
        raise ToolError(f"the host gave no answer to the tool call ({error})") from None
    if answer.get("ok"):
        return answer.get("value")
    raise _error(answer)


class Tool:
    """One host tool, callable with positional or keyword arguments."""

    def __init__(self, description: dict[str, Any]) -> None:
        self.__name__ = self.name = str(description["name"])
        self.description = description
        self.__doc__ = _doc(description)

    def __call__(self, *args: object, **kwargs: object) -> object:
        return _ask(
            {"op": "call", "name": self.name, "args": builtins.list(args), "kwargs": kwargs}
        )

    def __repr__(self) -> str:
        return f"<host tool {self.description.get('signature', self.name + '(...)')}>"


def _doc(description: dict[str, Any]) -> str:
    schema = json.dumps(description.get("parameters", {}), indent=2)
    parts = [description.get("signature", ""), description.get("description") or ""]
    return "\n\n".join([*filter(None, parts), f"Parameters (JSON schema):\n{schema}"])


_tools: dict[str, Tool] | None = None


def _catalogue() -> dict[str, Tool]:
    global _tools
    if _tools is None:
        listed = _ask({"op": "list"})
        _tools = (
            {entry["name"]: Tool(entry) for entry in listed}
            if isinstance(listed, builtins.list)
            else {}
        )
    return _tools


def list() -> builtins.list[dict[str, Any]]:  # the documented name: sandbox_tools.list()
    """What each tool this sandbox was given is: name, signature, description, JSON schema."""
    return [dict(tool.description) for tool in _catalogue().values()]


def _local(prefix: str) -> dict[str, Tool]:
    """The tools whose name is ``prefix`` + a plain name, by that plain name."""
    return {
        name[len(prefix) :]: tool
        for name, tool in _catalogue().items()
        if name.startswith(prefix) and "." not in name[len(prefix) :]
    }


def _lookup(prefix: str, name: str, module: str) -> Tool:
    tools = _local(prefix)
    if name in tools:
        return tools[name]
    offered = ", ".join(sorted(tools)) or "none"
    raise AttributeError(f"module {module!r} has no tool {name!r}; it offers: {offered}")


def __getattr__(name: str) -> Tool:
    if name.startswith("__"):
        raise AttributeError(name)
    return _lookup("", name, __name__)


def __dir__() -> builtins.list[str]:
    return sorted([*globals(), *_local("")])
