"""``python -m sandbox`` is the llm-wasm-sandbox command."""

from sandbox.cli import main

main()
