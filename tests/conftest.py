"""Shared test setup: every test process keeps its sessions in one throwaway directory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Set before any sandbox is created: warm pools are keyed by the sessions root.
_HOME = tempfile.mkdtemp(prefix="llm-wasm-sandbox-tests-")
os.environ["LLM_WASM_SANDBOX_HOME"] = _HOME

from sandbox import ExecutionPolicy, RuntimeType, Sandbox, create_sandbox  # noqa: E402


@pytest.fixture(params=[RuntimeType.PYTHON, RuntimeType.JAVASCRIPT], ids=["python", "javascript"])
def runtime(request: pytest.FixtureRequest) -> RuntimeType:
    kind: RuntimeType = request.param
    return kind


@pytest.fixture
def python_sandbox() -> Iterator[Sandbox]:
    with create_sandbox(RuntimeType.PYTHON) as sandbox:
        yield sandbox


@pytest.fixture
def js_sandbox() -> Iterator[Sandbox]:
    with create_sandbox(RuntimeType.JAVASCRIPT) as sandbox:
        yield sandbox


@pytest.fixture
def sessions_home() -> Path:
    return Path(_HOME) / "sessions"


def policy(**overrides: object) -> ExecutionPolicy:
    return ExecutionPolicy(**overrides)
