"""create_sandbox(): the one entry point that assembles policy, runtime, workspace and guest."""

from __future__ import annotations

import atexit
import threading
from pathlib import Path

from sandbox.core.policy import ExecutionPolicy
from sandbox.core.runtime_type import RuntimeType
from sandbox.host.guest import BootSpec
from sandbox.host.pool import DEFAULT_POOL_SIZE, WarmPool
from sandbox.runtimes import runtime_for
from sandbox.sessions import metadata, persisted_globals
from sandbox.sessions import workspace as workspaces
from sandbox.sessions.sandbox import Sandbox

_pools: dict[tuple[BootSpec, Path], WarmPool] = {}
_pools_lock = threading.Lock()


def create_sandbox(
    runtime: RuntimeType | str = RuntimeType.PYTHON,
    policy: ExecutionPolicy | None = None,
    session_id: str | None = None,
    *,
    auto_persist_globals: bool = False,
) -> Sandbox:
    """A sandbox for ``runtime`` under ``policy``.

    Without ``session_id`` a new session (UUID) is created and its interpreter comes from a
    warm pool, so the first call does not wait for a boot. With ``session_id`` that session's
    workspace is reopened (or created under that name) and a fresh interpreter boots for it.

    With ``auto_persist_globals`` the session's globals (picklable Python values and imported
    modules, JSON-able JavaScript globals) are saved in the workspace after every call and
    restored whenever an interpreter boots for it: in a new process, after a limit reset, or
    after eviction. ``metadata["unsaved_globals"]`` names what could not be saved, and why.
    """
    runtime_type = RuntimeType(runtime_for(runtime).name)
    if policy is not None and not isinstance(policy, ExecutionPolicy):
        raise TypeError(
            f"policy must be an ExecutionPolicy (or None for the defaults), "
            f"not {type(policy).__name__}"
        )
    policy = policy if policy is not None else ExecutionPolicy()
    spec = boot_spec(runtime_type, policy, auto_persist_globals)
    root = workspaces.sessions_root()
    if session_id is None:
        guest, workspace = _pool(spec, root).take()
        workspaces.adopt_spare(workspace)
        session_id = workspace.parent.name
    else:
        session_id = workspaces.validate_session_id(session_id)
        workspace = workspaces.open_workspace(root, session_id)
        guest = spec.boot(workspace)
    metadata.record_creation(workspace.parent, session_id, runtime_type.value)
    return Sandbox(
        runtime=runtime_type,
        policy=policy,
        session_id=session_id,
        workspace=workspace,
        spec=spec,
        guest=guest,
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
            if not any(known_root == root for _spec, known_root in _pools):
                workspaces.remove_orphaned_spares(root)
            pool = WarmPool(spec, lambda: workspaces.spare_workspace(root), DEFAULT_POOL_SIZE)
            _pools[(spec, root)] = pool
        return pool


@atexit.register
def _close_pools() -> None:
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
