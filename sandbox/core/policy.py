"""ExecutionPolicy: the limits and capabilities one sandbox runs under.

Defaults are read from ``config/policy.toml`` (shipped inside the package); a user file named
by ``$LLM_WASM_SANDBOX_POLICY`` overrides them, and explicit constructor arguments override
both. Validation is strict so that a typo in a limit is an error, never a silent default.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

USER_POLICY_ENV = "LLM_WASM_SANDBOX_POLICY"

_MIB = 1024 * 1024
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_GUEST_PATHS = ("/.sandbox", "/packages")


def _packaged_policy_text() -> str:
    """The defaults file: inside the wheel it is package data, in a checkout it is config/."""
    packaged = resources.files("sandbox").joinpath("config/policy.toml")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "config" / "policy.toml"
    return checkout.read_text(encoding="utf-8")


def _read_policy_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ValueError(f"policy file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"policy file {path} is not valid TOML: {exc}") from None


@cache
def _file_defaults(user_file: str | None) -> dict[str, Any]:
    defaults = tomllib.loads(_packaged_policy_text())
    if user_file:
        defaults.update(_read_policy_file(Path(user_file)))
    return defaults


def _guest_path(value: str, what: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts or path == PurePosixPath("/"):
        raise ValueError(
            f"{what} must be an absolute guest path below '/', without '..'; got {value!r}"
        )
    text = str(path)
    if any(
        text == reserved or text.startswith(reserved + "/") for reserved in _RESERVED_GUEST_PATHS
    ):
        raise ValueError(f"{what} {value!r} is reserved for the sandbox driver")
    return text


class ExecutionPolicy(BaseModel):
    """Hard limits and capabilities for every execute() call of a sandbox."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The literal defaults only type the signature: config/policy.toml supplies the real ones
    # (tests/test_policy.py keeps the two equal).
    fuel_budget: int = Field(
        default=10_000_000_000, gt=0, description="WebAssembly instructions one call may consume."
    )
    memory_bytes: int = Field(
        default=256 * _MIB,
        ge=16 * _MIB,
        le=4096 * _MIB,
        description="Maximum guest linear memory, in bytes.",
    )
    timeout_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="Wall-clock deadline of one call."
    )
    stdout_max_bytes: int = Field(default=1 * _MIB, ge=0, description="stdout bytes kept per call.")
    stderr_max_bytes: int = Field(default=1 * _MIB, ge=0, description="stderr bytes kept per call.")
    workspace_max_bytes: int = Field(
        default=100 * _MIB,
        ge=0,
        description="Workspace size past which guest file writes fail with 'no space left'; "
        "every file, directory and link also costs 512 bytes.",
    )
    workspace_max_files: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Files, directories and links the workspace may hold; creating more fails "
        "with 'no space left'.",
    )
    guest_mount_path: str = Field(
        default="/app", description="Where the workspace appears in the guest."
    )
    mounts: dict[Path, str] = Field(
        default_factory=dict, description="Read-only host directory -> guest path."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="The guest's whole environment; nothing is inherited."
    )
    preserve_logs: bool = Field(
        default=False, description="Keep each call's output and result in the session."
    )
    log_max_bytes: int = Field(
        default=10 * _MIB,
        ge=64 * 1024,
        description="With preserve_logs, the log is rotated past this size (one old log kept).",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_file_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(_file_defaults(os.environ.get(USER_POLICY_ENV)))
        merged.update(data)
        return merged

    @field_validator("guest_mount_path")
    @classmethod
    def _check_mount_path(cls, value: str) -> str:
        return _guest_path(value, "guest_mount_path")

    @field_validator("mounts")
    @classmethod
    def _check_mounts(cls, value: dict[Path, str]) -> dict[Path, str]:
        checked: dict[Path, str] = {}
        for host, guest in value.items():
            host_path = Path(host).expanduser().resolve()
            if not host_path.is_dir():
                raise ValueError(f"mount source {host} is not an existing host directory")
            checked[host_path] = _guest_path(guest, f"mount target for {host}")
        return checked

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _ENV_NAME.match(name):
                raise ValueError(
                    f"environment variable name {name!r} must match [A-Za-z_][A-Za-z0-9_]*"
                )
            if "\0" in text:
                raise ValueError(f"environment variable {name} contains a NUL byte")
        return value

    @model_validator(mode="after")
    def _check_mount_overlap(self) -> ExecutionPolicy:
        targets = [self.guest_mount_path, *self.mounts.values()]
        for index, first in enumerate(targets):
            for second in targets[index + 1 :]:
                a, b = PurePosixPath(first), PurePosixPath(second)
                if a == b or a in b.parents or b in a.parents:
                    raise ValueError(
                        f"guest paths {first!r} and {second!r} overlap; mounts must be disjoint"
                    )
        return self

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> ExecutionPolicy:
        """Policy from a TOML file (on top of the packaged defaults), then ``overrides``."""
        data = _read_policy_file(Path(path))
        data.update(overrides)
        return cls(**data)
