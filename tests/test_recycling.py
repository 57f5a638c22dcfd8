"""A closed Python interpreter serves the next sandbox only as a new one would.

The recycler (sandbox/host/recycler.py) hands a closed interpreter's instance to the next
sandbox after resetting it. These tests run a hostile tenant first, then check the next
sandbox got that very instance and can tell nothing of its past: its whole linear memory is
byte for byte that of a brand-new instance (but for the generator states each new
interpreter draws from the OS), and nothing the tenant left (names, modules,
patched builtins, open descriptors, environment, working directory) is visible.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Iterator

import pytest

from sandbox import ExecutionPolicy, GuestStartupError, RuntimeType, Sandbox, create_sandbox
from sandbox.host import memory_image, recycler
from sandbox.host.reactor_guest import MT19937_STATE_BYTES
from sandbox.runtimes import runtime_for

_HOSTILE_TENANT = """
import builtins, os, sys
secret = 'tenant-a-secret' * 1000
blocks = [bytearray(b'A' * 4096) for _ in range(64)]
sys.modules['planted'] = sys
builtins.print = lambda *args, **kwargs: None
held = open('/app/held.txt', 'w'); held.write('x'); held.flush()
os.environ['PLANTED'] = '1'
os.mkdir('/app/sub'); os.chdir('/app/sub')
sys.path.insert(0, '/app/sub')
import random; random.seed(1)
"""

_PROBE = """
import builtins, os, sys
print(sorted(name for name in globals() if not name.startswith('__')))
print('planted' in sys.modules, builtins.print.__name__, os.environ.get('PLANTED'))
print(os.getcwd(), '/app/sub' in sys.path, sorted(os.listdir('/app')))
open_descriptors = []
for fd in range(3, 40):
    try:
        os.fstat(fd)
        open_descriptors.append(fd)
    except OSError:
        pass
print(open_descriptors)
"""


@pytest.fixture
def python_recycler() -> Iterator[recycler.InterpreterRecycler]:
    """The Python runtime's recycler, emptied so this test's tenants meet each other."""
    found = runtime_for(RuntimeType.PYTHON).recycler
    assert found is not None, "Python interpreters are recycled by default"
    found.clear()
    yield found


def _memory(sandbox: Sandbox) -> tuple[bytes, bytes]:
    """The guest's linear memory with its generator states blanked out, and those states
    (each new interpreter draws its own from the OS)."""
    guest = sandbox._guest
    guest_store = guest._guest_store  # type: ignore[union-attr]
    store, memory = guest_store.store, guest_store.memory
    whole = bytearray(
        ctypes.string_at(memory_image._base_address(store, memory), memory.data_len(store))
    )
    states = b""
    for address in guest._generator_states:  # type: ignore[union-attr]
        states += whole[address : address + MT19937_STATE_BYTES]
        whole[address : address + MT19937_STATE_BYTES] = bytes(MT19937_STATE_BYTES)
    return hashlib.sha256(whole).digest(), states


def _fresh_probe(policy: ExecutionPolicy | None = None) -> str:
    with create_sandbox(RuntimeType.PYTHON, policy) as sandbox:
        result = sandbox.execute(_PROBE)
        assert result.success, result.stderr
        return result.stdout


def test_the_next_sandbox_gets_the_instance_as_new(
    python_recycler: recycler.InterpreterRecycler,
) -> None:
    runtime = runtime_for(RuntimeType.PYTHON)
    runtime.recycler = None
    try:
        new = create_sandbox(RuntimeType.PYTHON)  # a brand-new instance, for comparison
    finally:
        runtime.recycler = python_recycler
    with new:
        with create_sandbox(RuntimeType.PYTHON) as tenant:
            assert tenant.execute(_HOSTILE_TENANT).success
            used = tenant._guest
        with create_sandbox(RuntimeType.PYTHON) as next_sandbox:
            assert next_sandbox._guest is used, "the closed interpreter was not reused"
            (recycled, recycled_states), (fresh, fresh_states) = _memory(next_sandbox), _memory(new)
            assert recycled == fresh
            assert len(recycled_states) == 2 * MT19937_STATE_BYTES  # random's and numpy's
            assert recycled_states != fresh_states


def test_the_next_tenant_sees_nothing_of_the_last(
    python_recycler: recycler.InterpreterRecycler,
) -> None:
    expected = _fresh_probe()
    with create_sandbox(RuntimeType.PYTHON) as tenant:
        assert tenant.execute(_HOSTILE_TENANT).success
        used = tenant._guest

    with create_sandbox(RuntimeType.PYTHON) as next_sandbox:
        assert next_sandbox._guest is used
        probe = next_sandbox.execute(_PROBE)
        assert probe.success, probe.stderr
        assert probe.stdout == expected
        assert probe.stdout.splitlines()[1:3] == ["False print None", "/app False []"]


def test_neighbours_on_one_instance_draw_different_numbers(
    python_recycler: recycler.InterpreterRecycler,
) -> None:
    draws = []
    guests = []
    for _ in range(3):
        with create_sandbox(RuntimeType.PYTHON) as sandbox:
            result = sandbox.execute("import os, random; print(random.random(), os.urandom(8))")
            draws.append(result.stdout)
            guests.append(sandbox._guest)
    assert guests[1] is guests[0] and guests[2] is guests[0]
    assert len(set(draws)) == 3


def test_interpreters_that_grew_or_failed_are_freed_not_reused(
    python_recycler: recycler.InterpreterRecycler,
) -> None:
    with create_sandbox(RuntimeType.PYTHON) as grown:
        assert grown.execute("hold = bytearray(100 * 1024 * 1024)").success
        grown_guest = grown._guest
    with create_sandbox(RuntimeType.PYTHON) as crashed:
        crashed_guest = crashed._guest
        assert not crashed.execute("import os; os._exit(3)").success
    with create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(timeout_seconds=0.5)) as late:
        late_guest = late._guest
        assert late.execute("while True: pass").metadata["trap_reason"] == "timeout"

    assert len(python_recycler) == 0
    for guest in (grown_guest, crashed_guest, late_guest):
        assert guest._guest_store.store is None, "a grown or stopped interpreter was kept"


def test_a_smaller_memory_limit_boots_a_new_interpreter(
    python_recycler: recycler.InterpreterRecycler,
) -> None:
    with create_sandbox(RuntimeType.PYTHON) as tenant:
        assert tenant.execute("x = 1").success
        used = tenant._guest
        size = tenant.execute("x").memory_used_bytes
    with pytest.raises(GuestStartupError, match="memory_bytes"):
        create_sandbox(RuntimeType.PYTHON, ExecutionPolicy(memory_bytes=size - 65536))
    assert used._guest_store.store is None
