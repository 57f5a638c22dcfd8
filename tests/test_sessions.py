"""Live sessions: state across calls, eviction, and limits on live interpreters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox import RuntimeType, configure_sessions, create_sandbox, evict_idle_sessions

DEFINE = {
    RuntimeType.PYTHON: "import math\ndef area(r):\n    return math.pi * r * r\nclass Box:\n    size = 3\nn = 1",
    RuntimeType.JAVASCRIPT: "function area(r) { return Math.PI * r * r }\nclass Box { static size = 3 }\nlet n = 1",
}
USE = {
    RuntimeType.PYTHON: "n += 1\nprint(round(area(2), 2), Box.size, n)",
    RuntimeType.JAVASCRIPT: "n += 1; console.log(area(2).toFixed(2), Box.size, n)",
}


@pytest.fixture
def session_limits() -> Iterator[None]:
    yield
    configure_sessions(idle_timeout_seconds=None, max_live_sessions=None)


def test_state_persists_across_calls(runtime: RuntimeType) -> None:
    with create_sandbox(runtime) as sandbox:
        assert sandbox.execute(DEFINE[runtime]).success
        assert sandbox.execute(USE[runtime]).stdout == "12.57 3 2\n"
        assert sandbox.execute(USE[runtime]).stdout == "12.57 3 3\n"


def test_idle_sandboxes_are_evicted_and_reboot(runtime: RuntimeType, session_limits: None) -> None:
    with create_sandbox(runtime) as sandbox:
        sandbox.execute(DEFINE[runtime])
        (sandbox.workspace_path / "kept.txt").write_text("files survive")
        assert evict_idle_sessions(0) >= 1
        result = sandbox.execute(USE[runtime])
        assert result.metadata["session_reset"] is True
        assert result.metadata["session_reset_reason"] == "evicted_idle"
        assert not result.success  # the definitions are gone
        read = {
            RuntimeType.PYTHON: "print(open('kept.txt').read())",
            RuntimeType.JAVASCRIPT: "console.log(readText('kept.txt'))",
        }
        follow_up = sandbox.execute(read[runtime])
        assert follow_up.stdout == "files survive\n"
        assert "session_reset" not in follow_up.metadata


def test_max_live_sessions_evicts_least_recently_used(session_limits: None) -> None:
    configure_sessions(max_live_sessions=2)
    boxes = [create_sandbox(RuntimeType.JAVASCRIPT) for _ in range(3)]
    try:
        for index, box in enumerate(boxes):
            box.execute(f"var mine = {index}")
        first = boxes[0].execute("console.log(typeof mine)")
        assert first.metadata["session_reset_reason"] == "evicted_max_live_sessions"
        assert first.stdout == "undefined\n"
        assert boxes[2].execute("console.log(mine)").stdout == "2\n"
    finally:
        for box in boxes:
            box.close()


def test_session_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_live_sessions"):
        configure_sessions(max_live_sessions=0)
    with pytest.raises(ValueError, match="idle_timeout_seconds"):
        configure_sessions(idle_timeout_seconds=-1)
