"""Host tools a guest calls as functions (``create_sandbox(tools=...)``, the MCP bridge)."""

from sandbox.tools.registry import HostTool, ToolArgumentError, from_callable, from_schema, toolset

__all__ = ["HostTool", "ToolArgumentError", "from_callable", "from_schema", "toolset"]
