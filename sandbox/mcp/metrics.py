"""Counters and latency percentiles for get_metrics, so an operator can see what the server does.

Latencies are kept for a bounded window of recent calls: percentiles over the whole uptime
would hide a server that has recently become slow, and an unbounded list would grow forever.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque

from sandbox.core.result import SandboxResult
from sandbox.mcp.models import LatencySummary, MetricsOutput

_LATENCY_WINDOW = 1000


class Metrics:
    """Thread-safe: tools run on worker threads and record concurrently."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._executions = 0
        self._failures: Counter[str] = Counter()
        self._by_language: Counter[str] = Counter()
        self._rejections: Counter[str] = Counter()
        self._latencies_ms: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self._sessions_created = 0
        self._sessions_expired = 0

    def record_execution(self, language: str, result: SandboxResult, latency_ms: float) -> None:
        """Count one execute_code call; ``latency_ms`` is the whole tool call, queueing included."""
        with self._lock:
            self._executions += 1
            self._by_language[language] += 1
            self._latencies_ms.append(latency_ms)
            if not result.success:
                reason = result.trap_reason
                self._failures[reason.value if reason else "error"] += 1

    def record_rejection(self, reason: str) -> None:
        """Count a tool call refused before it ran (rate limit, oversized input, full server)."""
        with self._lock:
            self._rejections[reason] += 1

    def record_session_created(self) -> None:
        with self._lock:
            self._sessions_created += 1

    def record_sessions_expired(self, count: int) -> None:
        """Count sessions destroyed for idleness, a sign that clients forget to clean up."""
        with self._lock:
            self._sessions_expired += count

    def snapshot(self, *, live_sessions: int) -> MetricsOutput:
        with self._lock:
            latencies = sorted(self._latencies_ms)
            failed = sum(self._failures.values())
            return MetricsOutput(
                executions=self._executions,
                succeeded=self._executions - failed,
                failed=failed,
                failures_by_reason=dict(self._failures),
                executions_by_language=dict(self._by_language),
                latency=LatencySummary(
                    p50_ms=_percentile(latencies, 0.50),
                    p95_ms=_percentile(latencies, 0.95),
                    samples=len(latencies),
                ),
                rejected_calls=dict(self._rejections),
                live_sessions=live_sessions,
                sessions_created=self._sessions_created,
                sessions_expired=self._sessions_expired,
                uptime_seconds=round(time.monotonic() - self._started, 3),
            )


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile: always a latency that was actually observed."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(fraction * len(ordered)) - 1)], 3)
