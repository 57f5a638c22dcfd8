"""BatchItem and BatchResult: the records a batch ships to its workers and streams back.

Both are small JSON-able pydantic models, so the same record is a line of the CLI's JSONL
files, a message on a local worker's pipe and a Ray task argument: nothing else is shipped.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sandbox.core.policy import MOUNT_FIELDS
from sandbox.core.runtime_type import RuntimeType

# Where an item's ``stdin`` is written, relative to the workspace (the guest sees it under the
# policy's guest_mount_path, /app by default); Python's sys.stdin reads it too.
STDIN_FILE = ".stdin"


class BatchItem(BaseModel):
    """One program of a batch: it runs in a fresh sandbox of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        min_length=1, max_length=256, description="Unique within the batch; tags the result."
    )
    code: str = Field(description="The program, run as one cell.")
    language: RuntimeType | None = Field(
        default=None, description="'python' or 'javascript'; default: the batch's runtime."
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        description="Workspace-relative path -> UTF-8 text, written before the code runs.",
    )
    stdin: str | None = Field(
        default=None,
        description=f"Input text: the workspace file {STDIN_FILE} (/app/{STDIN_FILE} by default); "
        "Python's sys.stdin and input() read it, JavaScript reads it with "
        f"readText('{STDIN_FILE}').",
    )
    policy: dict[str, Any] = Field(
        default_factory=dict,
        description="ExecutionPolicy fields that override the batch's policy for this item.",
    )
    keep_workspace: bool = Field(
        default=False, description="Keep the item's session (workspace) after it ran."
    )

    @field_validator("files")
    @classmethod
    def _check_files(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            path = PurePosixPath(name)
            if (
                not name
                or "\0" in name
                or path.is_absolute()
                or ".." in path.parts
                or name.endswith("/")
            ):
                raise ValueError(
                    f"file name {name!r} must be a relative path inside the workspace "
                    "(no leading '/', no '..', no NUL)"
                )
        return value

    @field_validator("policy")
    @classmethod
    def _check_policy(cls, value: dict[str, Any]) -> dict[str, Any]:
        # An item is data (often written by a model); mounting would let it read any host
        # directory. Mounts are the batch operator's choice, made once for the whole batch.
        named = sorted(MOUNT_FIELDS & set(value))
        if named:
            raise ValueError(
                f"an item's policy cannot set {', '.join(map(repr, named))} (it would expose "
                "host directories to the item); give mounts in the batch's policy instead"
            )
        return value


class BatchResult(BaseModel):
    """What one item did; ``error`` says why it could not run at all (the guest never failed)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    success: bool = Field(description="The program ran to completion with exit code 0.")
    language: RuntimeType | None = None
    stdout: str = ""
    stderr: str = ""
    exit_code: int = -1
    trap_reason: str | None = Field(
        default=None, description="The limit that stopped the guest (timeout, memory_limit, ...)."
    )
    error: str | None = Field(
        default=None,
        description="Why the item did not run: invalid item or policy, or its worker died twice.",
    )
    duration_ms: float = Field(default=0.0, description="Wall time in the worker, boot included.")
    fuel_consumed: int = 0
    attempts: int = Field(default=1, description="2 when the first worker died under the item.")
    worker: str = Field(default="", description="The worker that ran it (pid or Ray actor).")
    workspace_path: str | None = Field(
        default=None, description="The kept workspace (only with keep_workspace)."
    )


def describe_errors(error: ValidationError) -> str:
    """Each wrong field and what it allows, on one line (no pydantic links)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in entry['loc']) or 'item'}: {entry['msg']}"
        for entry in error.errors()
    )


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schemas of the CLI's input and output lines (docs/schemas/ holds them)."""
    return {
        "batch-item.schema.json": BatchItem.model_json_schema(),
        "batch-result.schema.json": BatchResult.model_json_schema(),
    }


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
