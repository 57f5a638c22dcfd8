"""Rewrite a guest module so that it imports its linear memory instead of defining it.

Why: wasmtime's WASI functions find guest memory through the *calling* instance's "memory"
export, so a wasm shim can only wrap a WASI call (as the disk quota does for ``fd_write``) if
it shares the guest's memory. A memory defined inside the guest cannot be handed to another
instance before the guest exists; an imported one can. Memory index 0 stays index 0, so no
instruction, data segment or export changes; only the import and memory sections do.
"""

from __future__ import annotations

from dataclasses import dataclass

MEMORY_MODULE = "env"
MEMORY_NAME = "memory"

_IMPORT_SECTION = 2
_MEMORY_SECTION = 5
_MEMORY_KIND = 0x02


@dataclass(frozen=True)
class MemoryLimits:
    min_pages: int
    max_pages: int | None


def _read_leb(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, offset


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _name(text: str) -> bytes:
    encoded = text.encode()
    return _leb(len(encoded)) + encoded


def _sections(wasm: bytes) -> list[tuple[int, bytes]]:
    if wasm[:8] != b"\0asm\1\0\0\0":
        raise ValueError("not a WebAssembly 1.0 binary module")
    sections, offset = [], 8
    while offset < len(wasm):
        section_id = wasm[offset]
        size, start = _read_leb(wasm, offset + 1)
        sections.append((section_id, wasm[start : start + size]))
        offset = start + size
    return sections


def _parse_memory_section(payload: bytes) -> tuple[MemoryLimits, bytes]:
    count, offset = _read_leb(payload, 0)
    if count != 1:
        raise ValueError(f"expected exactly one defined memory, found {count}")
    start = offset
    flags = payload[offset]
    if flags not in (0, 1):
        raise ValueError(f"unsupported memory flags {flags:#x} (shared or 64-bit memory)")
    minimum, offset = _read_leb(payload, offset + 1)
    maximum = None
    if flags == 1:
        maximum, offset = _read_leb(payload, offset)
    return MemoryLimits(minimum, maximum), payload[start:offset]


def _memory_section(sections: list[tuple[int, bytes]]) -> tuple[MemoryLimits, bytes]:
    found = [payload for section_id, payload in sections if section_id == _MEMORY_SECTION]
    if len(found) != 1:
        raise ValueError("module has no memory section to turn into an import")
    return _parse_memory_section(found[0])


def memory_limits(wasm: bytes) -> MemoryLimits:
    """The limits of the memory the module defines (what the host must create for it)."""
    return _memory_section(_sections(wasm))[0]


def import_memory(wasm: bytes) -> bytes:
    """The module with its memory turned into an ``env.memory`` import."""
    sections = _sections(wasm)
    _limits, limits_bytes = _memory_section(sections)
    memory_import = _name(MEMORY_MODULE) + _name(MEMORY_NAME) + bytes([_MEMORY_KIND]) + limits_bytes
    rebuilt = bytearray(wasm[:8])
    has_imports = any(section_id == _IMPORT_SECTION for section_id, _ in sections)
    for section_id, payload in sections:
        if section_id == _MEMORY_SECTION:
            continue
        if section_id == _IMPORT_SECTION:
            count, offset = _read_leb(payload, 0)
            payload = _leb(count + 1) + payload[offset:] + memory_import
        elif not has_imports and section_id > _IMPORT_SECTION and section_id != 0:
            imports = _leb(1) + memory_import
            rebuilt += bytes([_IMPORT_SECTION]) + _leb(len(imports)) + imports
            has_imports = True
        rebuilt += bytes([section_id]) + _leb(len(payload)) + payload
    return bytes(rebuilt)
