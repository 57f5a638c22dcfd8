"""The languages a sandbox can run."""

from enum import StrEnum


class RuntimeType(StrEnum):
    """Guest language of a sandbox; the value is what the CLI and MCP tools accept."""

    PYTHON = "python"
    JAVASCRIPT = "javascript"
