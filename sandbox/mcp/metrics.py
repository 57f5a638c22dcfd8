"""Per-client counters and latency percentiles for get_metrics.

Each client sees only its own figures: on a shared server, counts of other clients' sessions
and executions would let one client detect and watch the others. A client's figures are
dropped when it disconnects (nobody can ask for them any more).

Latencies are kept for a bounded window of recent calls: percentiles over the whole
connection would hide a server that has recently become slow, and an unbounded list would
grow forever.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from sandbox.core.result import SandboxResult
from sandbox.mcp.models import LatencySummary, MetricsOutput

_LATENCY_WINDOW = 1000


@dataclass
class _ClientFigures:
    started: float = field(default_factory=time.monotonic)
    executions: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    by_language: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCY_WINDOW))
    sessions_created: int = 0
    interpreters_evicted: int = 0


class Metrics:
    """Thread-safe: tools run on worker threads and record concurrently."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, _ClientFigures] = {}

    def record_execution(
        self, client: str, language: str, result: SandboxResult, latency_ms: float
    ) -> None:
        """Count one execute_code call; ``latency_ms`` is the whole tool call, queueing included."""
        with self._lock:
            figures = self._figures(client)
            figures.executions += 1
            figures.by_language[language] += 1
            figures.latencies_ms.append(latency_ms)
            if not result.success:
                reason = result.trap_reason
                figures.failures[reason.value if reason else "error"] += 1

    def record_rejection(self, client: str, reason: str) -> None:
        """Count a tool call refused before it ran (rate limit, oversized input, full server)."""
        with self._lock:
            self._figures(client).rejections[reason] += 1

    def record_session_created(self, client: str) -> None:
        with self._lock:
            self._figures(client).sessions_created += 1

    def record_interpreter_evicted(self, client: str | None) -> None:
        """Count an interpreter of ``client`` freed for idleness or to make room for others."""
        if client is None:
            return
        with self._lock:
            self._figures(client).interpreters_evicted += 1

    def forget(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def snapshot(self, client: str, *, live_sessions: int) -> MetricsOutput:
        with self._lock:
            figures = self._figures(client)
            latencies = sorted(figures.latencies_ms)
            failed = sum(figures.failures.values())
            return MetricsOutput(
                executions=figures.executions,
                succeeded=figures.executions - failed,
                failed=failed,
                failures_by_reason=dict(figures.failures),
                executions_by_language=dict(figures.by_language),
                latency=LatencySummary(
                    p50_ms=_percentile(latencies, 0.50),
                    p95_ms=_percentile(latencies, 0.95),
                    samples=len(latencies),
                ),
                rejected_calls=dict(figures.rejections),
                live_sessions=live_sessions,
                sessions_created=figures.sessions_created,
                interpreters_evicted=figures.interpreters_evicted,
                window_seconds=round(time.monotonic() - figures.started, 3),
            )

    def _figures(self, client: str) -> _ClientFigures:
        figures = self._clients.get(client)
        if figures is None:
            figures = self._clients[client] = _ClientFigures()
        return figures


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile: always a latency that was actually observed."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(fraction * len(ordered)) - 1)], 3)
