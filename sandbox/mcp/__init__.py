"""MCP server: the sandbox as tools for Claude Desktop, Claude Code and other MCP clients.

Start it with ``llm-wasm-mcp`` (or ``llm-wasm-sandbox mcp``); docs/mcp.md has client setup and
every tool. The entry points live in ``sandbox.mcp.server`` and are not re-exported here, so
that ``python -m sandbox.mcp.server`` does not import the module twice.
"""
