"""How close a call came to its fuel budget, for the caller sizing the next one."""

from __future__ import annotations

import functools
import re


def round_up(value: int) -> int:
    """Round up to two significant digits: a budget a person can read and type back."""
    step: int = 10 ** max(0, len(str(value)) - 2)
    return -(-value // step) * step


# Upper bounds (percent of the budget, exclusive) of each status; at or past 100: exhausted.
_FUEL_STATUSES = ((25.0, "efficient"), (60.0, "moderate"), (85.0, "warning"), (100.0, "critical"))
_FUEL_EXHAUSTED = "exhausted"
_FUEL_NEEDS_HEADROOM = frozenset({"warning", "critical", _FUEL_EXHAUSTED})


_HEAVY_IMPORT = re.compile(
    r"^\s*(?:import|from)\s+(numpy|pandas|scipy|matplotlib|sklearn|sympy|openpyxl|PIL)\b",
    re.MULTILINE,
)
_LOOP = re.compile(r"^\s*(?:while\b|for\b.*\bin\b)|\bfor\s*\(|\bwhile\s*\(", re.MULTILINE)


def _likely_causes(code: str | None, status: str) -> list[str]:
    """What in the cell probably used the fuel; only said when the budget came close."""
    if code is None or status not in _FUEL_NEEDS_HEADROOM:
        return []
    causes = []
    packages = sorted(set(_HEAVY_IMPORT.findall(code)))
    if packages:
        causes.append(
            f"Heavy package imports: {', '.join(packages)} (a second import in the same "
            "session costs almost nothing)"
        )
    if _LOOP.search(code):
        causes.append("Loops: their iteration count multiplies the cost of their body")
    return causes


@functools.lru_cache(maxsize=256)  # the same few budgets, call after call
def _recommendation(status: str, recommended: int | None, budget: int) -> str:
    if recommended is None:
        return f"The budget of {budget:,} instructions leaves ample headroom; no change needed."
    if status == _FUEL_EXHAUSTED:
        return (
            f"The call ran out of fuel: raise ExecutionPolicy.fuel_budget to at least "
            f"{recommended:,} or split the work over several calls."
        )
    return (
        f"The call came close to its budget of {budget:,}: consider raising "
        f"ExecutionPolicy.fuel_budget to {recommended:,} for similar workloads."
    )


def fuel_analysis(*, consumed: int, budget: int, code: str | None = None) -> dict[str, object]:
    """Say how close a call came to its fuel budget, so the caller can size the next one.

    A recommended budget (twice the consumption, rounded up) is given only once the call
    came close enough that a slightly larger input would be stopped. ``recommendation`` (text)
    and ``likely_causes`` (read from ``code`` when given) are always present, as in 0.4.x.
    """
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    percent = consumed * 100 / budget
    status = next((name for bound, name in _FUEL_STATUSES if percent < bound), _FUEL_EXHAUSTED)
    analysis: dict[str, object] = {
        "consumed": consumed,
        "budget": budget,
        "utilization_percent": round(percent, 1),
        "status": status,
    }
    recommended = round_up(2 * consumed) if status in _FUEL_NEEDS_HEADROOM else None
    if recommended is not None:
        analysis["recommended_budget"] = recommended
        analysis["suggested_budget"] = recommended  # the 0.4.x README's name
    analysis["recommendation"] = _recommendation(status, recommended, budget)
    analysis["likely_causes"] = _likely_causes(code, status)
    return analysis
