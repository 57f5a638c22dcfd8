"""Bounded capture of a guest's stdout and stderr.

Bytes past the cap are counted and dropped on arrival, so a guest printing in a loop costs
the host a counter, not memory or disk.
"""

from __future__ import annotations


class OutputCapture:
    """Keeps at most ``limit`` bytes of one stream for one execute() call."""

    __slots__ = ("_chunks", "_kept", "limit", "total_bytes")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total_bytes = 0
        self._kept = 0
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> bytes:
        """Count ``data`` and keep what fits; returns the part kept (what may be streamed)."""
        self.total_bytes += len(data)
        room = self.limit - self._kept
        if room <= 0:
            return b""
        kept = data[:room]
        self._chunks.append(kept)
        self._kept += len(kept)
        return kept

    @property
    def truncated(self) -> bool:
        return self.total_bytes > self._kept

    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", errors="replace")
