"""ExecutionPolicy: the limits and capabilities one sandbox runs under.

Defaults are read from ``config/policy.toml`` (shipped inside the package); a user file named
by ``$LLM_WASM_SANDBOX_POLICY`` overrides them, and explicit constructor arguments override
both. Validation is strict so that a typo in a limit is an error, never a silent default.
"""

from __future__ import annotations

import os
import re
import tomllib
import warnings
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sandbox.core.errors import PolicyValidationError

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
    if any(ord(character) < 32 for character in value):
        raise ValueError(f"{what} must not contain control characters; got {value!r}")
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


# Every field that can mount a host directory (ours and 0.4.x's), for callers that must
# refuse mounts from data they do not trust (batch items).
MOUNT_FIELDS = frozenset(
    {"mounts", "mount_data_dir", "guest_data_path", "additional_readonly_mounts", "mount_host_dir"}
)

# llm-wasm-sandbox 0.4.x policy fields, mapped onto ours: name -> what to use instead.
LEGACY_FIELDS = {
    "mount_data_dir": "mounts={host_dir: guest_path}",
    "guest_data_path": "mounts={host_dir: guest_path}",
    "additional_readonly_mounts": "mounts={host_dir: guest_path}",
    "mount_host_dir": "create_sandbox(workspace_root=...) (it never chose the workspace)",
    "argv": "nothing: code runs as cells in a live interpreter, there is no command line",
}
_LEGACY_DATA_PATH = "/data"


def _legacy_mounts(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the 0.4.x fields removed and the mounts they named added to ``mounts``."""
    data = dict(data)
    mounts = dict(data.get("mounts") or {})
    data_dir = data.pop("mount_data_dir", None)
    data_path = data.pop("guest_data_path", None)
    if data_dir is not None:
        mounts[Path(data_dir)] = data_path if data_path is not None else _LEGACY_DATA_PATH
    elif data_path is not None:
        raise ValueError("guest_data_path needs mount_data_dir (the host directory to mount)")
    for entry in data.pop("additional_readonly_mounts", None) or ():
        try:
            host, guest = entry
        except (TypeError, ValueError):
            raise ValueError(
                f"additional_readonly_mounts entries must be (host_path, guest_path) pairs, "
                f"got {entry!r}"
            ) from None
        mounts[Path(host)] = guest
    for name in ("mount_host_dir", "argv"):
        value = data.pop(name, None)
        if (
            name == "argv"
            and value is not None
            and not (isinstance(value, list | tuple) and all(isinstance(arg, str) for arg in value))
        ):
            raise ValueError(f"argv must be a list of strings, got {value!r}")
    if mounts or "mounts" in data:
        data["mounts"] = mounts
    if "timeout_seconds" in data and data["timeout_seconds"] is None:
        del data["timeout_seconds"]  # 0.4.x's "no timeout": the default deadline applies
    return data


def _warn_legacy(data: dict[str, Any], stacklevel: int) -> None:
    for name, instead in LEGACY_FIELDS.items():
        if name in data:
            warnings.warn(
                f"ExecutionPolicy({name}=...) is the llm-wasm-sandbox 0.4 spelling; use {instead}",
                DeprecationWarning,
                stacklevel=stacklevel + 1,
            )
    if "timeout_seconds" in data and data["timeout_seconds"] is None:
        warnings.warn(
            "ExecutionPolicy(timeout_seconds=None) no longer disables the deadline: every call "
            "is stopped at its timeout, and None now means the default one; pass a number of "
            "seconds (at most 3600) instead",
            DeprecationWarning,
            stacklevel=stacklevel + 1,
        )


class ExecutionPolicy(BaseModel):
    """Hard limits and capabilities for every execute() call of a sandbox.

    Invalid values raise PolicyValidationError (a ValueError and a pydantic ValidationError).
    The llm-wasm-sandbox 0.4 fields (``mount_data_dir``, ``guest_data_path``,
    ``additional_readonly_mounts``, ``mount_host_dir``, ``argv``, ``timeout_seconds=None``)
    are accepted with a DeprecationWarning and mapped onto ``mounts`` and the default timeout.
    """

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
    tool_max_calls: int = Field(
        default=100, ge=0, description="Host tool calls one call may make (tools=, MCP bridge)."
    )
    tool_max_argument_bytes: int = Field(
        default=1 * _MIB,
        ge=0,
        description="Bytes of tool requests (JSON arguments) one call may send to the host.",
    )
    tool_max_result_bytes: int = Field(
        default=16 * _MIB,
        ge=0,
        description="Bytes of tool results (JSON) one call may receive from the host.",
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

    state_budget_bytes: int = Field(
        default=256 * _MIB,
        ge=0,
        description="Host-side bytes one session's checkpoints may hold (interpreter pages "
        "and workspace copies); a checkpoint past it is refused.",
    )
    undo_last_cell: bool = Field(
        default=False,
        description="Take an automatic checkpoint before every cell so undo() can return to "
        "it (about 1-3 ms a Python cell, more with a large workspace; a plain session call "
        "takes ~0.2 ms, so it is opt-in; the MCP server turns it on).",
    )
    keep_interpreter_state: bool = Field(
        default=True,
        description="Save a Python interpreter's state when it is evicted or closed, and "
        "restore it when the session's next interpreter boots.",
    )

    if not TYPE_CHECKING:  # type checkers keep the field-by-field signature pydantic derives

        def __init__(self, **data: Any) -> None:
            _warn_legacy(data, stacklevel=2)
            try:
                super().__init__(**data)
            except ValidationError as exc:
                raise PolicyValidationError.from_validation_error(exc) from None

    def __setattr__(self, name: str, value: Any) -> None:
        """0.4.x assigned policy fields; that still works, validated like the constructor.

        Deprecated: a policy shared by sandboxes should not change under them. Assign before
        create_sandbox(); memory, mounts and env are fixed when the interpreter boots.
        """
        if name not in type(self).model_fields and name not in LEGACY_FIELDS:
            raise AttributeError(
                f"ExecutionPolicy has no field {name!r}; fields are "
                f"{', '.join(sorted(type(self).model_fields))}"
            )
        warnings.warn(
            f"assigning policy.{name} is deprecated (policies are meant to be immutable); "
            f"create the policy with ExecutionPolicy(..., {name}=...) instead",
            DeprecationWarning,
            stacklevel=2,
        )
        current = dict(self.__dict__)
        if name == "mount_data_dir":
            current["mount_data_dir"] = value
            current["guest_data_path"] = _LEGACY_DATA_PATH
        elif name == "guest_data_path":
            current["mounts"] = _retarget_data_mount(self.mounts, value)
        else:
            current[name] = value
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            updated = type(self)(**current)
        for field in type(self).model_fields:
            object.__setattr__(self, field, getattr(updated, field))

    @model_validator(mode="before")
    @classmethod
    def _apply_file_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(_file_defaults(os.environ.get(USER_POLICY_ENV)))
        merged.update(_legacy_mounts(data))
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
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        extra: Any = None,
        from_attributes: bool | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> ExecutionPolicy:
        try:
            return super().model_validate(
                obj,
                strict=strict,
                extra=extra,
                from_attributes=from_attributes,
                context=context,
                by_alias=by_alias,
                by_name=by_name,
            )
        except ValidationError as exc:
            raise PolicyValidationError.from_validation_error(exc) from None

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> ExecutionPolicy:
        """Policy from a TOML file (on top of the packaged defaults), then ``overrides``."""
        data = _read_policy_file(Path(path))
        data.update(overrides)
        return cls(**data)


def _retarget_data_mount(mounts: dict[Path, str], guest_path: str) -> dict[Path, str]:
    """``policy.guest_data_path = ...`` (0.4.x): move the data mount, the one at /data."""
    moved = {host: guest for host, guest in mounts.items() if guest != _LEGACY_DATA_PATH}
    sources = [host for host, guest in mounts.items() if guest == _LEGACY_DATA_PATH]
    if not sources:
        raise ValueError("guest_data_path needs mount_data_dir (the host directory to mount)")
    moved[sources[0]] = guest_path
    return moved
