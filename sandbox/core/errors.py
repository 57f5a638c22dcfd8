"""Exceptions raised to the host program.

Failures of the *guest* (exceptions, limits, crashes) are never raised: they come back as a
SandboxResult with ``success=False``. These exceptions mean the host asked for something
that cannot be done, so the message always says what was wrong and what is allowed.
"""


class SandboxError(Exception):
    """Base class of every error this package raises."""


class RuntimeIntegrityError(SandboxError):
    """A guest runtime binary is missing or its SHA-256 does not match the pinned value."""


class GuestStartupError(SandboxError):
    """The guest interpreter could not boot (for example a memory limit too small for it)."""


class SandboxClosedError(SandboxError):
    """execute() was called on a sandbox after close()."""


class InvalidSessionIdError(SandboxError, ValueError):
    """A session id is not a UUID and not a safe name."""


class WorkspacePathError(SandboxError, ValueError):
    """A workspace-relative path is absolute, climbs out with '..', or crosses a symlink."""


class SessionNotFoundError(SandboxError, LookupError):
    """No session workspace exists for the given id."""
