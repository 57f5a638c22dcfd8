"""How a guest's tool calls reach the host, whatever the runtime.

A guest asks with one JSON request (``{"op": "call", "name", "args", "kwargs"}`` or
``{"op": "list"}``) and gets one JSON answer (``{"ok": true, "value": ...}`` or ``{"ok":
false, "kind", "type", "message"}``). The host side of a request is a ``ToolHandler`` (made
per cell by ``sandbox.tools``) that runs on the guest's own thread, inside a host call: the
Python reactor's door, or the JavaScript driver's hypercall. It never raises: a failure is an
answer, and a tool that runs into the cell's deadline asks the guest store to stop the guest
(``ToolReply.stop``), the way every host function stops a guest (docs/architecture.md).

JavaScript has no door that carries bytes, so its request is a file the driver writes in the
workspace's hidden state directory, and its answer a file the host writes in the driver's
read-only control directory: a cell can read its own answers but never forge one, and can
only ask what any of its tool calls could ask.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

# Where the JavaScript driver writes its request (relative to the workspace) and reads the
# answer (in the control directory). The state directory is hidden from files_created.
TOOL_REQUEST_FILE = ".sandbox-state/tool-request.json"
TOOL_ANSWER_FILE = "tool-answer.json"


@dataclass(frozen=True)
class ToolReply:
    """The answer's bytes, and whether the guest must stop now (the cell's deadline passed)."""

    payload: bytes
    stop: bool = False


class ToolHandler(Protocol):
    """One cell's tool calls: limits, validation, the calls themselves and their record."""

    @property
    def request_cap(self) -> int:
        """The most bytes a request may have; longer ones are refused unread."""

    def admit(self, length: int) -> ToolReply | None:
        """A refusal for a request of ``length`` bytes too big to read, or None to go on."""

    def handle(self, request: bytes, deadline: float) -> ToolReply:
        """Answer ``request`` before ``deadline`` (time.monotonic()); never raises."""


def failure(kind: str, message: str, type_name: str = "") -> bytes:
    """An answer for a call that did not return a value."""
    answer = {"ok": False, "kind": kind, "type": type_name, "message": message}
    return json.dumps(answer).encode()
