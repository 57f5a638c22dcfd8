"""Batch execution: thousands of programs, each in a fresh sandbox, on warm worker pools.

See docs/batch.md. ``run_batch`` streams BatchResult records as items finish, on local worker
processes or on Ray actors; ``sandbox.batch.humaneval`` scores completions (pass@k).
"""

from sandbox.batch.dispatch import BatchRun, default_workers, run_batch
from sandbox.batch.models import BatchItem, BatchResult

__all__ = ["BatchItem", "BatchResult", "BatchRun", "default_workers", "run_batch"]
