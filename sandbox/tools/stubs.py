"""Declarations of host tools for a model to read: Python stubs and TypeScript-style ones.

A model writing code mode programs needs each tool's signature, docstring and argument schema
in the language it writes; these are generated from the same HostTool the guest calls, so the
two never disagree. Dotted names (``github.search_issues``) are grouped by server:
``mcp_tools.github`` in Python, ``tools.github`` in JavaScript.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sandbox.tools.registry import HostTool

_PY_TYPES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "array": "list",
    "object": "dict",
    "null": "None",
}
_TS_TYPES = {
    "string": "string",
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "array": "unknown[]",
    "object": "Record<string, unknown>",
    "null": "null",
}


def python_stubs(tools: Iterable[HostTool]) -> str:
    """One module block per server (``mcp_tools.<server>``) or ``sandbox_tools``."""
    blocks: list[str] = []
    for module, group in _grouped(tools).items():
        where = f"mcp_tools.{module}" if module else "sandbox_tools"
        lines = [f"# from {where} import {', '.join(_short(tool) for tool in group)}"]
        for tool in group:
            lines += [
                f"def {_short(tool)}({_python_parameters(tool.parameters)}) -> Any:",
                '    """' + _indented(tool.description or "(no description)", "    "),
                "",
                "    Arguments (JSON schema): " + json.dumps(tool.parameters, sort_keys=True),
                '    """',
                "",
            ]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def typescript_stubs(tools: Iterable[HostTool]) -> str:
    """``declare namespace tools.<server>`` blocks; each tool takes one arguments object."""
    blocks: list[str] = []
    for module, group in _grouped(tools).items():
        namespace = f"tools.{module}" if module else "tools"
        lines = [f"declare namespace {namespace} {{"]
        for tool in group:
            lines += [
                "  /** " + _indented(tool.description or "(no description)", "   * "),
                "   */",
                f"  function {_short(tool)}(args: {_ts_object(tool.parameters)}): unknown;",
            ]
        lines.append("}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _grouped(tools: Iterable[HostTool]) -> dict[str, list[HostTool]]:
    groups: dict[str, list[HostTool]] = {}
    for tool in sorted(tools, key=lambda tool: tool.name):
        module, _, _ = tool.name.rpartition(".")
        groups.setdefault(module, []).append(tool)
    return groups


def _short(tool: HostTool) -> str:
    return tool.name.rpartition(".")[2]


def _indented(text: str, prefix: str) -> str:
    return text.strip().replace("\n", "\n" + prefix)


def _python_parameters(schema: dict[str, Any]) -> str:
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    shown = []
    for name in sorted(properties, key=lambda name: name not in required):
        kind = _PY_TYPES.get(str(properties[name].get("type")), "Any")
        shown.append(f"{name}: {kind}" if name in required else f"{name}: {kind} | None = None")
    return ", ".join(shown)


def _ts_object(schema: dict[str, Any]) -> str:
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    fields = [
        f"{name}{'' if name in required else '?'}: "
        f"{_TS_TYPES.get(str(spec.get('type')), 'unknown')}"
        for name, spec in properties.items()
    ]
    return "{ " + "; ".join(fields) + " }" if fields else "{}"
