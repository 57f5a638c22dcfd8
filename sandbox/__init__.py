"""llm-wasm-sandbox: run untrusted, LLM-generated Python and JavaScript in WebAssembly.

from sandbox import create_sandbox, RuntimeType

with create_sandbox(RuntimeType.PYTHON) as sb:
    result = sb.execute("print(6 * 7)")
    print(result.stdout)  # "42\\n"

The names of llm-wasm-sandbox 0.4 (PolicyValidationError, PruneResult, PythonSandbox, ...)
are exported too; docs/migrating.md says what each does here.
"""

from sandbox.batch import BatchItem, BatchResult, BatchRun, run_batch
from sandbox.core.errors import (
    CheckpointError,
    CheckpointIntegrityError,
    GuestStartupError,
    InvalidSessionIdError,
    PolicyValidationError,
    RuntimeIntegrityError,
    SandboxClosedError,
    SandboxError,
    SandboxExecutionError,
    SessionNotFoundError,
    WorkspacePathError,
)
from sandbox.core.policy import ExecutionPolicy
from sandbox.core.result import SandboxResult, TrapReason
from sandbox.core.runtime_type import RuntimeType
from sandbox.factory import create_sandbox
from sandbox.host.control import CellControl
from sandbox.sessions.async_calls import OutputEvent
from sandbox.sessions.checkpoints import Checkpoint
from sandbox.sessions.files import (
    PruneReport,
    SessionInfo,
    delete_session_file,
    delete_session_path,
    delete_session_workspace,
    list_session_files,
    list_sessions,
    prune_sessions,
    read_session_file,
    write_session_file,
)
from sandbox.sessions.metadata import SessionMetadata
from sandbox.sessions.packages import install_package, list_available_packages
from sandbox.sessions.registry import configure_sessions, evict_idle_sessions
from sandbox.sessions.sandbox import BaseSandbox, JavaScriptSandbox, PythonSandbox, Sandbox
from sandbox.sessions.sandbox_logger import SandboxLogger
from sandbox.sessions.storage import DiskStorageAdapter, StorageAdapter, StorageBackend

# llm-wasm-sandbox 0.4's name of PruneReport.
PruneResult = PruneReport

__all__ = [
    "BaseSandbox",
    "BatchItem",
    "BatchResult",
    "BatchRun",
    "CellControl",
    "Checkpoint",
    "CheckpointError",
    "CheckpointIntegrityError",
    "DiskStorageAdapter",
    "ExecutionPolicy",
    "GuestStartupError",
    "InvalidSessionIdError",
    "JavaScriptSandbox",
    "OutputEvent",
    "PolicyValidationError",
    "PruneReport",
    "PruneResult",
    "PythonSandbox",
    "RuntimeIntegrityError",
    "RuntimeType",
    "Sandbox",
    "SandboxClosedError",
    "SandboxError",
    "SandboxExecutionError",
    "SandboxLogger",
    "SandboxResult",
    "SessionInfo",
    "SessionMetadata",
    "SessionNotFoundError",
    "StorageAdapter",
    "StorageBackend",
    "TrapReason",
    "WorkspacePathError",
    "configure_sessions",
    "create_sandbox",
    "delete_session_file",
    "delete_session_path",
    "delete_session_workspace",
    "evict_idle_sessions",
    "install_package",
    "list_available_packages",
    "list_session_files",
    "list_sessions",
    "prune_sessions",
    "read_session_file",
    "run_batch",
    "write_session_file",
]
