"""Host tools as the guest sees them: a name, a signature, a docstring and a JSON schema.

A tool made from a Python callable is described by its signature (a pydantic model built from
the parameters, which also checks the arguments before the callable runs) and its docstring
(Google-style ``Args:`` lines become the arguments' descriptions). A tool given as a schema
(a bridged MCP server's) is checked for unknown and missing arguments only; its own server
checks the rest.
"""

from __future__ import annotations

import inspect
import keyword
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from sandbox.core.errors import SandboxError

# Names the guests' tool modules use themselves (sandbox_tools.py, the JS driver's `tools`).
_RESERVED = frozenset(
    {"list", "builtins", "json", "then", "constructor", "prototype", "toJSON", "toString"}
    | {"valueOf", "inspect", "Tool", "ToolError", "ToolArgumentError", "ToolLimitError"}
    | {"ToolTimeoutError", "servers", "Any", "annotations"}
)
_ARG_LINE = re.compile(r"^\s{2,}(\*{0,2}[A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


class ToolArgumentError(SandboxError, TypeError):
    """A guest called a tool with arguments its signature or schema does not accept."""


@dataclass(frozen=True)
class HostTool:
    """One tool: how the guest is told about it, how its arguments are checked, and the call.

    ``bind`` turns the guest's positional and keyword arguments into the keyword arguments
    ``function`` takes (raising ToolArgumentError naming the argument); ``function`` returns
    the value, or an awaitable of it.
    """

    name: str
    description: str
    signature: str
    parameters: dict[str, Any]
    bind: Callable[[list[Any], dict[str, Any]], tuple[list[Any], dict[str, Any]]]
    function: Callable[..., Any] = field(repr=False)
    is_async: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "signature": self.signature,
            "description": self.description,
            "parameters": self.parameters,
        }


def check_name(name: object) -> str:
    """``name`` if a guest can call a tool by it (dotted for a bridged server's tools)."""
    parts = name.split(".") if isinstance(name, str) else []
    if not parts or any(not p.isidentifier() or keyword.iskeyword(p) for p in parts):
        raise ValueError(
            f"tool name {name!r} is not a Python identifier (letters, digits and '_', not "
            "starting with a digit, not a keyword); name it with tools={'name': function}"
        )
    if any(p in _RESERVED or p.startswith("_") for p in parts):
        raise ValueError(
            f"tool name {name!r} is reserved by the guests' tool modules (or starts with '_'); "
            "name it otherwise with tools={'name': function}"
        )
    return str(name)


def from_callable(name: str, function: Callable[..., Any]) -> HostTool:
    """A tool described and checked by ``function``'s signature and docstring."""
    if not callable(function):
        raise TypeError(f"tool {name!r} must be callable, not {type(function).__name__}")
    try:  # annotations as types, also under `from __future__ import annotations`
        signature = inspect.signature(function, eval_str=True)
        hints = typing.get_type_hints(function)
    except Exception:  # unresolvable annotations: shown as written, checked as Any
        signature, hints = inspect.signature(function), {}
    docstring = inspect.getdoc(function) or ""
    argument_docs = _argument_docs(docstring)
    fields: dict[str, Any] = {}
    parameters = list(signature.parameters.values())
    for index, parameter in enumerate(parameters):
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(
                f"tool {name!r}: *args and **kwargs parameters cannot be described to the "
                f"guest; give {parameter.name!r} named parameters instead"
            )
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[f"p{index}"] = (
            hints.get(parameter.name, Any),
            pydantic.Field(
                default, alias=parameter.name, description=argument_docs.get(parameter.name)
            ),
        )
    model = pydantic.create_model(
        f"{name}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields
    )
    schema = model.model_json_schema(by_alias=True)
    schema.pop("title", None)

    def bind(args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            raise ToolArgumentError(f"{name}(): {error}") from None
        try:
            checked = model.model_validate(bound.arguments)
        except pydantic.ValidationError as error:
            raise ToolArgumentError(f"{name}(): {_first_problem(error)}") from None
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        for index, parameter in enumerate(parameters):
            value = getattr(checked, f"p{index}")
            if parameter.kind is parameter.POSITIONAL_ONLY:
                positional.append(value)
            else:
                keywords[parameter.name] = value
        return positional, keywords

    return HostTool(
        name=name,
        description=docstring,
        signature=f"{name}{signature}",
        parameters=schema,
        bind=bind,
        function=function,
        is_async=inspect.iscoroutinefunction(function),
    )


def from_schema(
    name: str,
    description: str,
    schema: Mapping[str, Any],
    function: Callable[..., Any],
) -> HostTool:
    """A tool whose arguments a JSON schema describes (an object schema's properties)."""
    properties = dict(schema.get("properties") or {})
    required = [str(key) for key in schema.get("required") or []]
    order = list(properties)

    def bind(args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        if len(args) > len(order):
            raise ToolArgumentError(
                f"{name}(): takes {len(order)} arguments ({', '.join(order) or 'none'}) but "
                f"{len(args)} were given"
            )
        arguments = dict(zip(order, args, strict=False))
        for key, value in kwargs.items():
            if key in arguments:
                raise ToolArgumentError(f"{name}(): multiple values for argument {key!r}")
            arguments[key] = value
        unknown = [key for key in arguments if key not in properties]
        if unknown and (properties or schema.get("additionalProperties") is False):
            raise ToolArgumentError(
                f"{name}(): unexpected argument {unknown[0]!r}; it takes: "
                f"{', '.join(order) or 'none'}"
            )
        missing = [key for key in required if key not in arguments]
        if missing:
            raise ToolArgumentError(f"{name}(): missing a required argument: {missing[0]!r}")
        return [], arguments

    shown = ", ".join(key if key in required else f"{key}=None" for key in order)
    return HostTool(
        name=name,
        description=description,
        signature=f"{name}({shown})",
        parameters=dict(schema),
        bind=bind,
        function=function,
        is_async=inspect.iscoroutinefunction(function),
    )


# What create_sandbox(tools=...) takes.
ToolSpec = Iterable[Callable[..., Any]] | Mapping[str, Callable[..., Any] | HostTool]


def toolset(tools: ToolSpec | None) -> dict[str, HostTool]:
    """The tools ``create_sandbox(tools=...)`` was given, by name."""
    if tools is None:
        return {}
    if isinstance(tools, Mapping):
        pairs = [(check_name(key), value) for key, value in tools.items()]
    elif isinstance(tools, (str, bytes)) or not isinstance(tools, Iterable):
        raise TypeError(
            "tools must be a list of functions or a mapping of name -> function, "
            f"not {type(tools).__name__}"
        )
    else:
        pairs = [(check_name(getattr(fn, "__name__", repr(fn))), fn) for fn in tools]
    made: dict[str, HostTool] = {}
    for name, function in pairs:
        if isinstance(function, HostTool):
            made[name] = function
            continue
        if name in made:
            raise ValueError(f"two tools are named {name!r}; pass a mapping to rename one")
        made[name] = from_callable(name, function)
    return made


def _first_problem(error: pydantic.ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    got = repr(problem.get("input"))
    got = got if len(got) <= 80 else got[:77] + "..."
    return f"argument {where!r}: {problem['msg']} (got {got})"


def _argument_docs(docstring: str) -> dict[str, str]:
    """The ``name: text`` lines of a Google-style ``Args:`` section."""
    docs: dict[str, str] = {}
    inside = False
    for line in docstring.splitlines():
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            inside = True
            continue
        if inside and line and not line[0].isspace():
            inside = False
        match = _ARG_LINE.match(line) if inside else None
        if match:
            docs[match.group(1).lstrip("*")] = match.group(2).strip()
    return docs
