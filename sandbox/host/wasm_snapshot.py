"""Re-snapshot a WebAssembly module: bake a warm instance's memory into a new module.

Why: a fresh Python guest pays for every import its first turn needs (a first traceback alone
costs ~30 ms and ~90 M fuel). So we run a warm-up turn once, read the linear memory and mutable
globals back, and write a module whose data segments hold that memory: its instances start
warm, and wasmtime maps the segments copy-on-write, so they cost no more to create.

Only what a core module's binary can express is carried: the linear memory (as active data
segments) and the initial values of the globals the caller passes. Tables, a start function's
effects and host-side state (WASI descriptors, preopens) are not. That is why an internal
function can be exported too: the CPython reactor's ``__wasilibc_reset_preopens`` lets a new
instance drop the preopen table the snapshotting instance left in memory.

The rewrite is one pure-Python pass over the binary. Sections other than memory, global,
export, data and datacount are copied as memoryview slices, and zero runs are found with
C-speed searches, so the ~100 MB CPython module takes about 0.2 s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

PAGE_SIZE = 65536
DEFAULT_MIN_GAP = 64
"""Zero runs at least this long split a data segment. A segment header costs under 12 bytes,
so shorter gaps are cheaper stored than split; wasmtime merges segments into one page image."""

_Buffer = bytes | bytearray | memoryview
_CUSTOM, _IMPORT, _FUNCTION, _MEMORY, _GLOBAL, _EXPORT, _START = 0, 2, 3, 5, 6, 7, 8
_DATA, _DATACOUNT = 11, 12
# The order the spec requires of non-custom sections (tag, 13, sits between memory and global).
_ORDER = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}
_FUNC, _TABLE, _MEM, _GLOB, _TAG = 0, 1, 2, 3, 4  # import/export kinds
_INT_BITS = {0x7F: 32, 0x7E: 64}  # i32, i64
_TYPE_NAMES = {0x7D: "f32", 0x7C: "f64", 0x7B: "v128"}
_NAME_FUNCTIONS, _NAME_DATA = 1, 9  # subsections of the "name" custom section
_EMPTY_PASSIVE = b"\x01\x00"  # a zero-length passive data segment
_NONZERO = re.compile(rb"[^\x00]")
_BLOCK = 4096
_ZERO_BLOCK = bytes(_BLOCK)
_Segment = tuple[int, memoryview, int | None, memoryview]  # flags, encoding, offset, bytes


def _uleb(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 at `pos`: (value, position after it)."""
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _sleb(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode a signed LEB128 at `pos`: (value, position after it)."""
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return (result - (1 << shift) if byte & 0x40 else result), pos


def _enc_uleb(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _enc_sleb(value: int) -> bytes:
    out = bytearray()
    while not -0x40 <= value < 0x40:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value & 0x7F)
    return bytes(out)


def _i32_const(value: int) -> bytes:
    """``i32.const value end``; `value` may be given unsigned (an address above 2 GiB)."""
    return b"\x41" + _enc_sleb(value - (1 << 32) if value >= 1 << 31 else value) + b"\x0b"


def _skip_name(buf: memoryview, pos: int) -> int:
    size, pos = _uleb(buf, pos)
    return pos + size


def _skip_valtype(buf: memoryview, pos: int) -> int:
    """Skip a value type, including the typed-reference forms ``(ref null? heaptype)``."""
    return _sleb(buf, pos + 1)[1] if buf[pos] in (0x63, 0x64) else pos + 1


def _limits(buf: memoryview, pos: int) -> tuple[int, int, int | None, int]:
    """Decode table/memory limits: (flags, min, max or None, position after them)."""
    flags = buf[pos]
    minimum, pos = _uleb(buf, pos + 1)
    maximum = None
    if flags & 1:
        maximum, pos = _uleb(buf, pos)
    if flags & 8:  # custom-page-sizes proposal: log2 of the page size follows
        pos = _uleb(buf, pos)[1]
    return flags, minimum, maximum, pos


def _const_expr(buf: memoryview, pos: int) -> tuple[int | None, int]:
    """Skip a constant expression through its ``end``: (the value when it is a lone
    ``i32.const``, else None; position after it)."""
    value: int | None = None
    count = 0
    while (op := buf[pos]) != 0x0B:
        pos += 1
        count += 1
        value = None
        if op in (0x41, 0x42):  # i32.const, i64.const
            value, pos = _sleb(buf, pos)
            value = value & 0xFFFFFFFF if op == 0x41 else None  # an address: unsigned
        elif op in (0x43, 0x44):  # f32.const, f64.const
            pos += 4 if op == 0x43 else 8
        elif op in (0x23, 0xD2):  # global.get, ref.func
            pos = _uleb(buf, pos)[1]
        elif op == 0xD0:  # ref.null heaptype
            pos = _sleb(buf, pos)[1]
        elif op == 0xFD and _uleb(buf, pos)[0] == 12:  # v128.const
            pos = _uleb(buf, pos)[1] + 16
        elif op not in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const add/sub/mul
            raise ValueError(f"unsupported opcode {op:#04x} in a constant expression")
    return (value if count == 1 else None), pos + 1


class _Module:
    """A core module's sections as memoryview slices of the input (nothing is copied), and
    how many functions, tables, memories, globals and tags it imports: imports come first in
    every index space, so these offset every index the rewrite writes."""

    def __init__(self, wasm: _Buffer) -> None:
        raw = memoryview(wasm).cast("B")
        if bytes(raw[:4]) != b"\0asm":
            raise ValueError("not a WebAssembly binary (no \\0asm magic)")
        if bytes(raw[4:8]) != b"\x01\0\0\0":
            raise ValueError(f"not a core module (version bytes {bytes(raw[4:8]).hex()})")
        self.sections: list[tuple[int, memoryview]] = []
        pos = 8
        while pos < len(raw):
            size, start = _uleb(raw, pos + 1)
            if start + size > len(raw):
                raise ValueError(f"section {raw[pos]} at byte {pos} runs past the end")
            self.sections.append((raw[pos], raw[start : start + size]))
            pos = start + size
        self.imported = dict.fromkeys(range(5), 0)
        buf = self.section(_IMPORT) or memoryview(b"\x00")  # absent: an empty vector
        count, pos = _uleb(buf, 0)
        for _ in range(count):
            pos = _skip_name(buf, _skip_name(buf, pos)) + 1
            kind = buf[pos - 1]
            if kind in (_FUNC, _TAG):  # a type index (a tag's follows an attribute byte)
                pos = _uleb(buf, pos + 1 if kind == _TAG else pos)[1]
            elif kind in (_TABLE, _MEM):
                pos = _limits(buf, _skip_valtype(buf, pos) if kind == _TABLE else pos)[3]
            elif kind == _GLOB:
                pos = _skip_valtype(buf, pos) + 1
            else:
                raise ValueError(f"unknown import kind {kind}")
            self.imported[kind] += 1

    def section(self, section_id: int) -> memoryview | None:
        return next((p for i, p in self.sections if i == section_id), None)

    def count(self, section_id: int) -> int:
        """The length of a vector section (0 when it is absent)."""
        buf = self.section(section_id)
        return 0 if buf is None else _uleb(buf, 0)[0]

    def custom(self, name: str) -> tuple[int, memoryview] | None:
        """(position in `sections`, body after the name) of the custom section `name`."""
        for at, (section_id, payload) in enumerate(self.sections):
            if section_id == _CUSTOM:
                size, pos = _uleb(payload, 0)
                if bytes(payload[pos : pos + size]) == name.encode():
                    return at, payload[pos + size :]
        return None

    def memory(self) -> tuple[int, int, int | None]:
        """The one defined memory's (flags, min pages, max pages); refuse everything else."""
        if self.imported[_MEM]:
            raise ValueError("the module imports its memory; only a defined memory is supported")
        if (count := self.count(_MEMORY)) != 1:
            raise ValueError(f"the module defines {count} memories; exactly one is supported")
        flags, minimum, maximum, _ = _limits(self.section(_MEMORY) or memoryview(b""), 1)
        if flags & 4:
            raise ValueError("the memory is memory64; only 32-bit memories are supported")
        if flags & 8:
            raise ValueError("the memory has a custom page size; only 64 KiB pages are supported")
        return flags, minimum, maximum

    def data_segments(self) -> list[_Segment]:
        """Each data segment as (flags, its whole encoding, i32.const offset or None, bytes)."""
        buf = self.section(_DATA) or memoryview(b"\x00")
        count, pos = _uleb(buf, 0)
        out = []
        for _ in range(count):
            start = pos
            flags, pos = _uleb(buf, pos)
            offset = None
            if flags == 2:
                memory_index, pos = _uleb(buf, pos)
                if memory_index:
                    raise ValueError(f"a data segment targets memory {memory_index}")
            if flags in (0, 2):
                offset, pos = _const_expr(buf, pos)
            elif flags != 1:
                raise ValueError(f"unknown data segment flags {flags}")
            size, pos = _uleb(buf, pos)
            out.append((flags, buf[start : pos + size], offset, buf[pos : pos + size]))
            pos += size
        return out


def _function_indices(module: _Module, names: Sequence[str]) -> dict[str, int]:
    """Find functions in the ``name`` section, the only place internal (unexported) functions
    are named; refuse a name that is missing or given to several functions."""
    custom = module.custom("name") if names else None
    if names and custom is None:
        raise ValueError("the module has no 'name' section to find internal functions in")
    wanted = {name.encode(): name for name in names}
    found: dict[str, list[int]] = {name: [] for name in names}
    section, pos = (custom[1] if custom else memoryview(b"")), 0
    while pos < len(section):
        size, start = _uleb(section, pos + 1)
        if section[pos] == _NAME_FUNCTIONS:
            count, p = _uleb(section, start)
            for _ in range(count):
                index, p = _uleb(section, p)
                length, p = _uleb(section, p)
                if (hit := wanted.get(bytes(section[p : p + length]))) is not None:
                    found[hit].append(index)
                p += length
        pos = start + size
    total = module.imported[_FUNC] + module.count(_FUNCTION)
    for name, indices in found.items():
        if len(indices) != 1 or indices[0] >= total:
            why = "not named" if not indices else f"named at indices {indices} of {total}"
            raise ValueError(f"function {name!r} is {why} in the module's name section")
    return {name: indices[0] for name, indices in found.items()}


def _global_section(
    module: _Module, values: Mapping[int, int], constants: Sequence[int] = ()
) -> list[_Buffer]:
    """The global section with the init expression of each global in `values` replaced, and
    an immutable i32 global appended for each of `constants`."""
    first, buf = module.imported[_GLOB], module.section(_GLOBAL)
    for index in values:
        if not first <= index < first + module.count(_GLOBAL):
            where = "imported" if 0 <= index < first else "not in the module"
            raise ValueError(f"global {index} is {where}; only defined globals can be set")
    for value in constants:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 32:
            raise ValueError(f"an exported constant must be an unsigned 32-bit int, got {value!r}")
    appended = [
        b"\x7f\x00\x41" + _enc_sleb(value - (1 << 32) if value >= 1 << 31 else value) + b"\x0b"
        for value in constants
    ]
    if buf is None:
        return [_enc_uleb(len(appended)), *appended] if appended else []
    count, pos = _uleb(buf, 0)
    chunks: list[_Buffer] = [_enc_uleb(count + len(appended))]
    for index in range(first, first + count):
        type_end = _skip_valtype(buf, pos) + 1  # value type, then the mutability byte
        init_end = _const_expr(buf, type_end)[1]
        if index in values:
            value, valtype = values[index], buf[pos]
            if not buf[type_end - 1]:
                raise ValueError(f"global {index} is immutable; only mutable globals can be set")
            if (bits := _INT_BITS.get(valtype)) is None:
                kind = _TYPE_NAMES.get(valtype, "a reference")
                raise ValueError(f"global {index} is {kind}; only i32 and i64 globals can be set")
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"global {index} needs an int, got {type(value).__name__}")
            if not -(1 << (bits - 1)) <= value < 1 << bits:
                raise ValueError(f"{value} does not fit global {index} (i{bits})")
            signed = value - (1 << bits) if value >= 1 << (bits - 1) else value
            opcode = b"\x41" if bits == 32 else b"\x42"
            chunks += [buf[pos:type_end], opcode + _enc_sleb(signed) + b"\x0b"]
        else:
            chunks.append(buf[pos:init_end])
        pos = init_end
    return chunks + appended


def _export_section(module: _Module, extra: list[tuple[str, int, int]]) -> list[_Buffer]:
    """The export section with `extra` (name, kind, index) appended; names must stay unique."""
    buf = module.section(_EXPORT) or memoryview(b"\x00")
    count, pos = _uleb(buf, 0)
    body, names = buf[pos:], set()
    for _ in range(count):
        size, pos = _uleb(buf, pos)
        names.add(bytes(buf[pos : pos + size]).decode())
        pos = _uleb(buf, pos + size + 1)[1]  # skip the kind byte and the index
    chunks: list[_Buffer] = [_enc_uleb(count + len(extra)), body]
    for name, kind, index in extra:
        if name in names:
            raise ValueError(f"the module already exports {name!r}")
        encoded = name.encode()
        chunks.append(_enc_uleb(len(encoded)) + encoded + bytes([kind]) + _enc_uleb(index))
    return chunks


def _next_nonzero(memory: bytes | bytearray, pos: int) -> int:
    """The index of the first non-zero byte at or after `pos`, or -1. Whole zero blocks are
    skipped by slice comparison (a memcmp), five times faster than the regex on its own."""
    while memory[pos : pos + _BLOCK] == _ZERO_BLOCK:
        pos += _BLOCK
    found = _NONZERO.search(memory, pos)
    return -1 if found is None else found.start()


def nonzero_runs(memory: bytes | bytearray, min_gap: int) -> list[tuple[int, int]]:
    """(start, end) of each stretch of `memory` holding non-zero bytes, split only at zero runs
    of at least `min_gap` bytes. C-speed searches; one Python iteration per run."""
    gap, runs = bytes(min_gap), []
    start = _next_nonzero(memory, 0)
    while start >= 0:
        end = memory.find(gap, start)  # the first long gap; the byte before it is non-zero
        if end < 0:  # none left: the run ends at the last non-zero byte
            end = len(memory)
            while memory[end - 1] == 0:  # fewer than min_gap zeros
                end -= 1
        runs.append((start, end))
        start = _next_nonzero(memory, end + min_gap)
    return runs


def _name_section(body: memoryview) -> list[_Buffer]:
    """The ``name`` section body without its data-segment names, which name the replaced
    segments by index. Function names stay: wasmtime's trap backtraces use them."""
    chunks: list[_Buffer] = []
    pos = 0
    while pos < len(body):
        size, start = _uleb(body, pos + 1)
        if body[pos] != _NAME_DATA:
            chunks.append(body[pos : start + size])
        pos = start + size
    return chunks


def _assemble(module: _Module, replaced: dict[int, list[_Buffer]]) -> bytes:
    """The module's sections in their order with `replaced` swapped in; a replaced section
    the module lacks goes right after the last section the spec orders before it."""
    sections: list[tuple[int, list[_Buffer]]] = []
    names = module.custom("name")
    for at, (section_id, payload) in enumerate(module.sections):
        if names is not None and at == names[0]:
            head = payload[: len(payload) - len(names[1])]
            sections.append((section_id, [head, *_name_section(names[1])]))
        else:
            sections.append((section_id, replaced.pop(section_id, [payload])))
    for section_id in sorted(replaced, key=_ORDER.__getitem__):  # the ones the module lacks
        before = [i for i, (s, _) in enumerate(sections) if s and _ORDER[s] < _ORDER[section_id]]
        sections.insert(before[-1] + 1 if before else 0, (section_id, replaced[section_id]))
    chunks: list[_Buffer] = [b"\0asm\x01\0\0\0"]
    for section_id, body in sections:
        chunks += [bytes([section_id]), _enc_uleb(sum(len(c) for c in body)), *body]
    return b"".join(chunks)


def snapshot_module(
    wasm: _Buffer,
    memory: _Buffer,
    globals_: Mapping[int, int],
    *,
    export_functions: Sequence[str] = (),
    export_globals: Mapping[str, int] | None = None,
    export_constants: Mapping[str, int] | None = None,
    min_gap: int = DEFAULT_MIN_GAP,
) -> bytes:
    """A module like `wasm` whose linear memory starts as `memory`.

    Args:
        wasm: The original core module: one 32-bit memory, defined rather than imported, and
            no start function (it would run again over the warm memory).
        memory: The instance's whole linear memory. The new minimum is its length in pages,
            rounded up; the maximum and the memory's flags are kept.
        globals_: Global index -> new initial value, for mutable i32/i64 globals (imported
            globals come first in the index space). Pass every mutable global the guest
            changes (wasi-sdk output has one, ``__stack_pointer``, global 0): the others keep
            their original initial values.
        export_functions: Internal functions, by their ``name``-section name, to export under
            that name (e.g. ``__wasilibc_reset_preopens``).
        export_globals: Export name -> global index, e.g. ``{"__stack_pointer": 0}`` so a host
            can check the stack pointer between turns.
        export_constants: Export name -> value: new immutable i32 globals, e.g. addresses in
            the snapshot's memory the host needs to find in every instance.
        min_gap: Zero runs at least this long split a data segment.

    Passive data segments keep their indices (a zero-length passive placeholder fills each
    earlier active slot) and all active segments are replaced, so ``memory.init`` and
    ``data.drop`` in the code mean what they did; a ``datacount`` section is kept consistent.

    Raises:
        ValueError: The module or an argument is outside what is supported; the message says
            what was found.
    """
    module = _Module(wasm)
    flags, old_min, maximum = module.memory()
    if module.section(_START) is not None:
        raise ValueError("the module has a start function, which would run again on the snapshot")
    if min_gap < 1:
        raise ValueError(f"min_gap must be at least 1, got {min_gap}")
    mem = memory.tobytes() if isinstance(memory, memoryview) else memory
    pages = -(-len(mem) // PAGE_SIZE)
    if pages < old_min or (maximum is not None and pages > maximum):
        raise ValueError(f"memory is {pages} pages; the module allows {old_min}..{maximum}")

    functions = _function_indices(module, export_functions)
    extra = [(name, _FUNC, index) for name, index in functions.items()]
    total_globals = module.imported[_GLOB] + module.count(_GLOBAL)
    for name, index in (export_globals or {}).items():
        if not 0 <= index < total_globals:
            raise ValueError(f"global {index} for export {name!r} is not in the module")
        extra.append((name, _GLOB, index))
    constants = dict(export_constants or {})
    for offset, name in enumerate(constants):
        extra.append((name, _GLOB, total_globals + offset))
    if len({name for name, _, _ in extra}) != len(extra):
        raise ValueError("an export name is given twice")

    segments = module.data_segments()
    passive = {i for i, segment in enumerate(segments) if segment[0] == 1}
    kept = max(passive) + 1 if passive else 0
    data: list[_Buffer] = [_EMPTY_PASSIVE] * kept
    for i in passive:
        data[i] = segments[i][1]
    runs, view = nonzero_runs(mem, min_gap), memoryview(mem)
    for start, end in runs:
        data += [b"\x00" + _i32_const(start) + _enc_uleb(end - start), view[start:end]]
    count = kept + len(runs)
    has_datacount = module.section(_DATACOUNT) is not None
    if has_datacount and count < len(segments):  # every index the code may name must exist
        data += [_EMPTY_PASSIVE] * (len(segments) - count)
        count = len(segments)

    limits = bytes([flags]) + _enc_uleb(pages) + (b"" if maximum is None else _enc_uleb(maximum))
    replaced: dict[int, list[_Buffer]] = {
        _MEMORY: [b"\x01", limits],
        _DATA: [_enc_uleb(count), *data],
    }
    if globals_ or constants:
        replaced[_GLOBAL] = _global_section(module, globals_, list(constants.values()))
    if extra:
        replaced[_EXPORT] = _export_section(module, extra)
    if has_datacount:
        replaced[_DATACOUNT] = [_enc_uleb(count)]
    return _assemble(module, replaced)


def initial_memory(wasm: _Buffer) -> bytes:
    """The linear memory a fresh instance of `wasm` starts with: its minimum pages with the
    active data segments applied. It lets a module be snapshotted without running it, and a
    snapshot be checked against the memory it was made from."""
    module = _Module(wasm)
    out = bytearray(module.memory()[1] * PAGE_SIZE)
    for flags, _, offset, payload in module.data_segments():
        if flags == 1:
            continue
        if offset is None:
            raise ValueError("an active data segment's offset is not an i32.const")
        if offset < 0 or offset + len(payload) > len(out):
            raise ValueError(f"a data segment at {offset} (+{len(payload)}) is out of bounds")
        out[offset : offset + len(payload)] = payload
    return bytes(out)
