"""Reading what a failed cell printed: the last exception of a guest's traceback.

The guest drivers print Python tracebacks from the user's first ``<cell>`` frame and
JavaScript errors with their ``<evalScript>`` stack lines (``sandbox/runtimes/*/guest_driver.*``);
these parsers read exactly that text, for the guidance rules to act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

PYTHON = "python"
JAVASCRIPT = "javascript"


_PY_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+)', re.MULTILINE)
_PY_HEADER = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)(?::[ ]?(?P<message>.*))?$")
_PY_TRACEBACK = "Traceback (most recent call last):"
_PY_CELL = "<cell>"
_JS_FRAME = re.compile(r"^\s+at (?:(?P<func>\S+) \()?<evalScript>:(?P<line>\d+):(?P<column>\d+)")
_JS_HEADER = re.compile(r"^(?:(?P<name>\w*Error): |(?P<uncaught>Uncaught) )(?P<message>.*)$")
_JS_STACK_LINE = re.compile(r"^\s+at ")


@dataclass(frozen=True)
class GuestError:
    """The exception that ended the cell, as the guest driver printed it."""

    name: str  # as printed: "json.decoder.JSONDecodeError", "ReferenceError", "Uncaught"
    message: str
    line: int | None  # innermost line of the user's cell
    column: int | None
    source: str | None  # the failing source line, when the traceback shows it
    at_parse: bool  # the cell never compiled, so none of it ran
    innermost_file: str | None  # where it was raised, e.g. a stdlib module path

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def _parse_python(stderr: str) -> GuestError | None:
    """Read the last exception of a traceback; the driver prints it after any user output."""
    frames = list(_PY_FRAME.finditer(stderr))
    if not frames:
        return _parse_python_without_frames(stderr)
    header = next(
        (
            match
            for text in stderr[frames[-1].end() :].splitlines()[1:]
            if text and not text[0].isspace() and (match := _PY_HEADER.match(text))
        ),
        None,
    )
    if header is None:
        return None
    cell_frames = [frame for frame in frames if frame.group("file") == _PY_CELL]
    source = None
    if cell_frames:
        after = stderr[cell_frames[-1].end() :].splitlines()[1:2]
        source = after[0].strip() if after and after[0].startswith("    ") else None
    return GuestError(
        name=header.group("name"),
        message=header.group("message") or "",
        line=int(cell_frames[-1].group("line")) if cell_frames else None,
        column=None,
        source=source or None,
        at_parse=_PY_TRACEBACK not in stderr,
        innermost_file=frames[-1].group("file"),
    )


def _parse_python_without_frames(stderr: str) -> GuestError | None:
    """An error raised before the cell had a frame, e.g. source containing a NUL byte."""
    last = stderr.rstrip("\n").rsplit("\n", 1)[-1]
    header = _PY_HEADER.match(last)
    if header is None or not header.group("name").endswith(("Error", "Exception")):
        return None
    return GuestError(
        name=header.group("name"),
        message=header.group("message") or "",
        line=None,
        column=None,
        source=None,
        at_parse=True,
        innermost_file=None,
    )


def _parse_javascript(stderr: str) -> GuestError | None:
    """Read the driver's ``Name: message`` plus ``at`` lines, innermost frame first."""
    lines = stderr.rstrip("\n").splitlines()
    end = len(lines)
    while end and _JS_STACK_LINE.match(lines[end - 1]):
        end -= 1
    header = next(
        (match for text in reversed(lines[:end]) if (match := _JS_HEADER.match(text))), None
    )
    if header is None:
        return None
    frame = next((match for text in lines[end:] if (match := _JS_FRAME.match(text))), None)
    return GuestError(
        name=header.group("name") or header.group("uncaught"),
        message=header.group("message"),
        line=int(frame.group("line")) if frame else None,
        column=int(frame.group("column")) if frame else None,
        source=None,
        at_parse=frame is not None and frame.group("func") is None,
        innermost_file=None,
    )


PARSERS: dict[str, Callable[[str], GuestError | None]] = {
    PYTHON: _parse_python,
    JAVASCRIPT: _parse_javascript,
}
