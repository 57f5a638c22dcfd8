"""The 0.4.x module ``sandbox.core.models``: the policy, result and runtime models by that path."""

from sandbox.core.policy import ExecutionPolicy
from sandbox.core.result import SandboxResult, TrapReason
from sandbox.core.runtime_type import RuntimeType

__all__ = ["ExecutionPolicy", "RuntimeType", "SandboxResult", "TrapReason"]
