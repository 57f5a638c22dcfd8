"""The file tools: what a model can see of a session's workspace and how files move in and out.

get_workspace_info lists it (the caller's files, and on request the ones the sandbox keeps
there), read_file pages a file out and write_file puts one in, charged against the workspace
quota exactly as the guest's own writes are. Kept apart from tools.py, which holds execution
and sessions; admission and result shaping are shared with it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult
from pydantic import Field

from sandbox.core.errors import SessionNotFoundError, WorkspacePathError
from sandbox.core.policy import ExecutionPolicy
from sandbox.host.guest_tree import INODE_BYTES, FileTooLargeError
from sandbox.mcp import pages, results
from sandbox.mcp.descriptions import READ_FILE, WORKSPACE_INFO, WRITE_FILE, ToolEntry, tool_hints
from sandbox.mcp.execution_result import OUTPUT_DIR
from sandbox.mcp.limits import ServerLimits
from sandbox.mcp.models import (
    FileContentOutput,
    FileEntry,
    FileWrittenOutput,
    WorkspaceOutput,
    language_of,
)
from sandbox.mcp.session_registry import LiveSession, SessionRegistry
from sandbox.sessions import changes
from sandbox.sessions.files import read_session_file, session_workspace, write_session_file
from sandbox.sessions.persisted_globals import STATE_DIR

if TYPE_CHECKING:
    from sandbox.mcp.tools import SandboxTools

FileEncoding = Annotated[
    Literal["utf-8", "base64"],
    Field(description="'utf-8' for text, 'base64' for binary data such as images or archives."),
]
SessionId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description="A session_id returned by create_session or execute_code.",
    ),
]
WorkspacePath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        description="Path relative to the session workspace, e.g. 'data/input.csv'. No '..', "
        "no leading '/'.",
    ),
]
# get_workspace_info lists at most this many files, fewer when their paths are long.
_LISTING_STEPS = (1000, 200, 50, 0)


class FileTools:
    """get_workspace_info, read_file and write_file of one server."""

    def __init__(
        self,
        tools: SandboxTools,
        *,
        policy: ExecutionPolicy,
        limits: ServerLimits,
        registry: SessionRegistry,
    ) -> None:
        self._tools = tools
        self._policy = policy
        self._limits = limits
        self._registry = registry

    def catalogue(self) -> list[ToolEntry]:
        return [
            (self.get_workspace_info, WORKSPACE_INFO, tool_hints("Workspace info", read_only=True)),
            (self.read_file, READ_FILE, tool_hints("Read file", read_only=True)),
            (self.write_file, WRITE_FILE, tool_hints("Write file", destructive=True)),
        ]

    def get_workspace_info(
        self,
        session_id: SessionId,
        ctx: Context[Any, Any],
        include_system_files: Annotated[
            bool,
            Field(
                description="Also list the files the sandbox keeps in the workspace (saved "
                f"output in {OUTPUT_DIR}/, saved globals in {STATE_DIR}/)."
            ),
        ] = False,
    ) -> Annotated[CallToolResult, WorkspaceOutput]:
        client = self._tools.admit(ctx)
        with self._registry.use(client, session_id) as live, _file_errors("."):
            snapshot = changes.snapshot(session_workspace(live.session_id))
            entries = sorted(snapshot.items())
            system = [entry for entry in entries if _is_system_file(entry[0])]
            user = [entry for entry in entries if not _is_system_file(entry[0])]
            listing = WorkspaceListing(user, system, include_system_files)
            return results.first_fitting(
                self._limits,
                [self._workspace_attempt(live, listing, listed) for listed in _LISTING_STEPS],
            )

    def read_file(
        self,
        session_id: SessionId,
        path: WorkspacePath,
        ctx: Context[Any, Any],
        encoding: FileEncoding = "utf-8",
        offset: Annotated[
            int, Field(ge=0, description="Byte offset to start at; pass next_offset to go on.")
        ] = 0,
        length: Annotated[
            int | None,
            Field(
                ge=16,
                description="Most bytes to return (fewer when the result would be too large); "
                "omit for as many as fit.",
            ),
        ] = None,
    ) -> Annotated[CallToolResult, FileContentOutput]:
        client = self._tools.admit(ctx)
        with self._registry.use(client, session_id) as live, _file_errors(path):
            try:  # the size is checked on the open file, before any byte is read
                data = read_session_file(
                    live.session_id, path, max_bytes=self._limits.max_file_bytes
                )
            except FileTooLargeError as error:
                self._check_file_size(client, error.size, path)
                raise
        return pages.file_page(
            session_id=session_id,
            path=path,
            data=data,
            encoding=encoding,
            offset=offset,
            length=length,
            limits=self._limits,
        )

    def write_file(
        self,
        session_id: SessionId,
        path: WorkspacePath,
        content: Annotated[str, Field(description="The file's complete new contents.")],
        ctx: Context[Any, Any],
        encoding: FileEncoding = "utf-8",
    ) -> Annotated[CallToolResult, FileWrittenOutput]:
        client = self._tools.admit(ctx)
        if encoding == "base64":
            try:
                data = base64.b64decode(content, validate=True)
            except binascii.Error as error:
                raise ToolError(f"content is not valid base64 ({error})") from None
        else:
            data = content.encode("utf-8")
        self._check_file_size(client, len(data), path)
        with self._registry.use(client, session_id) as live, _file_errors(path):
            # The same accounting as the guest's own writes: data plus a cost per entry.
            scan = changes.scan_workspace(
                session_workspace(live.session_id), self._policy.workspace_max_files + 1
            )
            replaced = scan.files.get(_normalised(path))
            others = scan.used_bytes - (replaced[0] if replaced else -INODE_BYTES)
            too_many = replaced is None and scan.entries >= self._policy.workspace_max_files
            if too_many or others + len(data) > self._policy.workspace_max_bytes:
                raise self._tools.reject(
                    client,
                    "workspace_full",
                    f"writing {len(data)} bytes would take the workspace past its "
                    f"{self._policy.workspace_max_bytes}-byte quota or its "
                    f"{self._policy.workspace_max_files}-file limit ({others} bytes and "
                    f"{scan.entries} entries are used by other files; each entry costs "
                    f"{INODE_BYTES} bytes); delete files from code or call reset_workspace first",
                )
            write_session_file(live.session_id, path, data)
        output = FileWrittenOutput(
            session_id=session_id,
            path=path,
            sandbox_path=f"{self._policy.guest_mount_path}/{_normalised(path)}",
            size_bytes=len(data),
        )
        return self._tools.result(
            output,
            f"Wrote {len(data)} bytes to {output.sandbox_path}; code in session {session_id} "
            f"can open it as {_normalised(path)!r}.",
        )

    def _check_file_size(self, client: str, size: int, path: str) -> None:
        if size > self._limits.max_file_bytes:
            raise self._tools.reject(
                client,
                "file_too_large",
                f"{path!r} is {size} bytes, over the {self._limits.max_file_bytes}-byte limit "
                "for file transfers. Have code summarise, filter or split it into smaller files.",
            )

    def _workspace_attempt(
        self, live: LiveSession, listing: WorkspaceListing, listed: int
    ) -> Callable[[], CallToolResult]:
        """get_workspace_info's result listing at most ``listed`` files (system files after
        the user's, in the same allowance)."""

        def build() -> CallToolResult:
            files = _file_entries(listing.user[:listed])
            room = listed - len(files) if listing.include_system else 0
            system = _file_entries(listing.system[:room])
            output = WorkspaceOutput(
                session_id=live.session_id,
                language=language_of(live.language),
                workspace_path=self._policy.guest_mount_path,
                files=files,
                files_not_listed=len(listing.user) - len(files),
                file_count=len(listing.user),
                total_bytes=sum(size for _, (size, _) in listing.user),
                system_files=system,
                system_file_count=len(listing.system),
                executions=live.executions,
                created_at=live.created_at.isoformat(),
                last_used_at=live.last_used_at.isoformat(),
                idle_timeout_seconds=self._limits.session_idle_ttl_seconds,
                auto_persist_globals=live.auto_persist_globals,
            )
            lines = "\n".join(f"{f.path}  {f.size_bytes} bytes" for f in files)
            if output.files_not_listed:
                lines += f"\n... and {output.files_not_listed} more files"
            if system:
                lines += "\nsystem files:\n" + "\n".join(
                    f"{f.path}  {f.size_bytes} bytes" for f in system
                )
            system_note = (
                f" ({output.system_file_count} system)" if output.system_file_count else ""
            )
            return results.assemble(
                output,
                f"{output.language} session {output.session_id}, {output.executions} "
                f"executions, {output.file_count} files{system_note} ({output.total_bytes} "
                f"bytes) in {output.workspace_path}" + (f":\n{lines.lstrip()}" if lines else "."),
                legacy_text=self._limits.legacy_text_content,
            )

        return build


@dataclass(frozen=True)
class WorkspaceListing:
    """A workspace's files as get_workspace_info lists them: (path, (size, mtime_ns)) pairs."""

    user: list[tuple[str, tuple[int, int]]]
    system: list[tuple[str, tuple[int, int]]]
    include_system: bool


def _is_system_file(path: str) -> bool:
    """Files the sandbox writes into the workspace for the caller, not the caller's own."""
    return path.split("/", 1)[0] in (OUTPUT_DIR, STATE_DIR)


def _file_entries(entries: list[tuple[str, tuple[int, int]]]) -> list[FileEntry]:
    return [
        FileEntry(
            path=path,
            size_bytes=size,
            modified_at=datetime.fromtimestamp(mtime_ns / 1e9, UTC).isoformat(),
        )
        for path, (size, mtime_ns) in entries
    ]


def _normalised(path: str) -> str:
    return PurePosixPath(path).as_posix()


@contextlib.contextmanager
def _file_errors(path: str) -> Iterator[None]:
    """Turn the host's file errors into messages that tell the model what to try instead."""
    try:
        yield
    except (WorkspacePathError, SessionNotFoundError) as error:
        raise ToolError(str(error)) from None
    except FileNotFoundError:
        raise ToolError(
            f"no file {path!r} in the workspace; get_workspace_info lists the files"
        ) from None
    except IsADirectoryError:
        raise ToolError(f"{path!r} is a directory; pass the path of a file") from None
    except OSError as error:
        raise ToolError(f"cannot access {path!r}: {error.strerror or error}") from None
