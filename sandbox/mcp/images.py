"""Images a cell wrote, as MCP content a client can show its user, within a byte budget.

Model APIs accept PNG, JPEG, GIF and WebP images and refuse others, so SVG (which is text)
goes as an embedded text resource instead. Files are read through read_session_file while the
caller holds the session, so guest code cannot replace one (with a symlink, say) between the
end of its call and the read.
"""

from __future__ import annotations

import base64
from pathlib import PurePosixPath

from mcp_types import ContentBlock, EmbeddedResource, ImageContent, TextResourceContents

from sandbox.core.errors import SandboxError
from sandbox.core.result import SandboxResult
from sandbox.sessions.files import read_session_file

# Model APIs accept these as images; SVG is text and goes as an embedded resource instead.
_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_SVG = ".svg"
_MAX_IMAGES = 4
MAX_LEFT_OUT = 20
# Room kept for the list of images that did not fit.
LEFT_OUT_ROOM = 2 * MAX_LEFT_OUT * 256


def inline_images(
    session_id: str, result: SandboxResult, room: int
) -> tuple[list[ContentBlock], list[str]]:
    """Content blocks for the images the call wrote that fit in ``room`` bytes, and the paths
    of those that did not (at most MAX_LEFT_OUT, clipped)."""
    blocks: list[ContentBlock] = []
    left_out: list[str] = []
    for entry in result.metadata.get("files", []):
        path = str(entry["path"])
        suffix = PurePosixPath(path).suffix.lower()
        if suffix not in _IMAGE_TYPES and suffix != _SVG:
            continue
        # Base64 grows data by a third; skip what cannot fit before reading it.
        if len(blocks) == _MAX_IMAGES or int(entry["size_bytes"]) * 4 // 3 + 256 > room:
            if len(left_out) < MAX_LEFT_OUT:
                left_out.append(_clipped(path))
            continue
        try:
            data = read_session_file(session_id, path, max_bytes=room)
        except (OSError, SandboxError):  # FileTooLargeError is a SandboxError
            continue  # removed or replaced since the call: nothing to show
        block = _image_block(session_id, path, suffix, data)
        if block is None:
            continue
        size = len(block.model_dump_json(by_alias=True, exclude_none=True).encode()) + 1
        if size > room:
            if len(left_out) < MAX_LEFT_OUT:
                left_out.append(_clipped(path))
            continue
        blocks.append(block)
        room -= size
    return blocks, left_out


def _image_block(session_id: str, path: str, suffix: str, data: bytes) -> ContentBlock | None:
    if suffix != _SVG:
        encoded = base64.b64encode(data).decode()
        return ImageContent(type="image", data=encoded, mime_type=_IMAGE_TYPES[suffix])
    try:
        svg = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return EmbeddedResource(
        type="resource",
        resource=TextResourceContents(
            uri=f"sandbox://{session_id}/{path}", mime_type="image/svg+xml", text=svg
        ),
    )


def _clipped(path: str) -> str:
    return path if len(path) <= 200 else path[:200] + " [...]"
