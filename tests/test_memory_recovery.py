"""A session outlives running out of memory: the next call is answered, never by a driver crash.

The cell that exhausts memory keeps its data in the session's namespace, so the interpreter is
still nearly full when the next cell arrives. The Python driver keeps a reserve it releases on
MemoryError; when even that is not enough, the host replaces the interpreter and says why.
"""

from __future__ import annotations

from sandbox import ExecutionPolicy, RuntimeType, create_sandbox

_BOMB = {
    RuntimeType.PYTHON: "l = []\nwhile True: l.append('x' * 10**6)",
    RuntimeType.JAVASCRIPT: "var l = []; while (true) l.push('x'.repeat(1e6) + Math.random())",
}
_ALIVE = {
    RuntimeType.PYTHON: "print('alive')",
    RuntimeType.JAVASCRIPT: "console.log('alive')",
}


def test_the_call_after_a_memory_error_is_answered(runtime: RuntimeType) -> None:
    with create_sandbox(runtime, ExecutionPolicy(memory_bytes=128 << 20)) as sandbox:
        bomb = sandbox.execute(_BOMB[runtime])
        assert bomb.metadata["trap_reason"] == "memory_limit"
        for _ in range(3):
            alive = sandbox.execute(_ALIVE[runtime])
            assert alive.success and alive.stdout == "alive\n", alive.stderr
            assert "<string>" not in alive.stderr


def test_memory_freed_by_the_user_is_usable_again() -> None:
    with create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(memory_bytes=128 << 20)) as sandbox:
        sandbox.execute(_BOMB[RuntimeType.PYTHON])
        again = sandbox.execute("del l\nx = 'y' * (50 << 20)\nlen(x)")
        assert again.success and again.stdout == "52428800\n", again.stderr


def test_a_session_too_full_to_compile_a_cell_says_so_and_keeps_its_data() -> None:
    """A cell that fills memory and swallows its own MemoryErrors leaves no room for the next.

    The next cell cannot even be compiled: it reports the memory limit with its guidance
    (never the driver's frames), and the session keeps its data, so the model can free it.
    """
    with create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(memory_bytes=128 << 20)) as sandbox:
        filled = sandbox.execute(
            "l = []\nfor size in (1 << 20, 1 << 12, 64):\n    try:\n"
            "        while True: l.append(bytearray(size))\n    except MemoryError: pass\n"
            "print('filled')"
        )
        assert filled.success and filled.stdout == "filled\n"
        refused = sandbox.execute("print('alive')")
        assert not refused.success and refused.metadata["trap_reason"] == "memory_limit"
        assert refused.metadata["error_guidance"]["error_type"] == "MemoryLimit"
        assert "<string>" not in refused.stderr and "Traceback" not in refused.stderr
        kept = sandbox.execute("print(len(l) > 0)\ndel l")
        assert kept.success and kept.stdout == "True\n", kept.stderr
        assert not kept.metadata.get("session_reset")
        fresh = sandbox.execute("x = 'y' * (50 << 20)\nprint(len(x))")
        assert fresh.success and fresh.stdout == "52428800\n", fresh.stderr
