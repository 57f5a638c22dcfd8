"""Exceptions raised to the host program.

Failures of the *guest* (exceptions, limits, crashes) are never raised: they come back as a
SandboxResult with ``success=False``. These exceptions mean the host asked for something
that cannot be done, so the message always says what was wrong and what is allowed.
"""

from __future__ import annotations

from typing import cast

from pydantic import ValidationError
from pydantic_core import InitErrorDetails


class SandboxError(Exception):
    """Base class of every error this package raises."""


class SandboxExecutionError(SandboxError):
    """The sandbox machinery itself failed (not the guest's code); the 0.4.x name.

    Guest failures still come back as ``success=False`` results. GuestStartupError and
    RuntimeIntegrityError are the specific cases and derive from this class, so
    ``except SandboxExecutionError`` written for 0.4.x catches them.
    """


class RuntimeIntegrityError(SandboxExecutionError):
    """A guest runtime binary is missing or its SHA-256 does not match the pinned value."""


class GuestStartupError(SandboxExecutionError):
    """The guest interpreter could not boot (for example a memory limit too small for it)."""


class SandboxClosedError(SandboxError):
    """execute() was called on a sandbox after close()."""


class InvalidSessionIdError(SandboxError, ValueError):
    """A session id is not a UUID and not a safe name."""


class WorkspacePathError(SandboxError, ValueError):
    """A workspace-relative path is absolute, climbs out with '..', or crosses a symlink."""


class SessionNotFoundError(SandboxError, LookupError):
    """No session workspace exists for the given id."""


class PolicyValidationError(ValidationError, SandboxError):
    """An ExecutionPolicy argument or policy file value is invalid (a ValueError).

    It is a pydantic ValidationError too, so code catching either keeps working; ``errors()``
    lists each wrong field with what it allows.
    """

    @classmethod
    def from_validation_error(cls, error: ValidationError) -> PolicyValidationError:
        """The same errors, under this class."""
        details = [
            cast(
                InitErrorDetails,
                {key: found[key] for key in ("type", "loc", "input", "ctx") if key in found},
            )
            for found in error.errors()
        ]
        return cls.from_exception_data(error.title, details)


class CheckpointError(SandboxError):
    """A checkpoint cannot be taken, restored or forked (budget, memory limit, wrong session)."""


class CheckpointIntegrityError(CheckpointError):
    """A saved interpreter state is tampered, truncated or from another module or engine.

    It is refused before a byte of it reaches an interpreter.
    """
