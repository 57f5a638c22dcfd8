"""Saved interpreter states on the host's disk: signed, and refused unless they match.

A state file is a memory image (``memory_image.py``) with a header naming what it may be
restored into: the snapshot module's cache key, the engine's settings, wasmtime's version and
the guest's preopened directories (wasi-libc keeps their descriptor numbers in memory). The
runs are stored as they are: zlib at level 1 shrank a 3 MB image 2.3x but took 64 ms to
compress and 22 ms to expand on this project's 2-core machine, which is most of a restarted
session's first call (no faster codec is in the standard library). The whole
file is authenticated with HMAC-SHA256 under a per-install key kept beside the compiled
artifacts (mode 0600), so a file that was edited, cut short or written by someone without the
key is refused before any byte reaches an interpreter.

Layout: magic, u32 header length, header JSON, u64 payload length, payload, 32-byte MAC. The
payload is the run table (u64 offset, u64 length each) followed by the runs' bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import struct
from collections.abc import Mapping
from pathlib import Path

from sandbox.core.errors import CheckpointIntegrityError
from sandbox.host.atomic_write import write_atomically
from sandbox.host.memory_image import MemoryImage
from sandbox.host.module_cache import cache_dir

MAGIC = b"LWSSTATE"
FORMAT = 1
KEY_FILE = "state-hmac.key"
_U32, _U64, _RUN = struct.Struct("<I"), struct.Struct("<Q"), struct.Struct("<QQ")
_MAC_BYTES = 32
_MAX_HEADER = 1 << 20


def install_key() -> bytes:
    """This install's key: 32 random bytes made on first use, readable by the owner only."""
    path = cache_dir() / KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:  # first writer wins; a racing process then reads the winner's key
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(key)
    return key


def encode(image: MemoryImage, identity: Mapping[str, object], info: Mapping[str, object]) -> bytes:
    """The signed file for ``image``; ``identity`` must match at load, ``info`` is carried."""
    header = json.dumps(
        {
            "format": FORMAT,
            "identity": dict(identity),
            "info": dict(info),
            "size": image.size,
            "base": image.base,
            "runs": len(image.runs),
        },
        sort_keys=True,
    ).encode()
    table = b"".join(_RUN.pack(start, len(data)) for start, data in image.runs)
    payload = b"".join([table, *(data for _, data in image.runs)])
    body = MAGIC + _U32.pack(len(header)) + header + _U64.pack(len(payload)) + payload
    return body + hmac.new(install_key(), body, hashlib.sha256).digest()


def decode(
    data: bytes, identity: Mapping[str, object], *, what: str
) -> tuple[MemoryImage, dict[str, object]]:
    """(image, info) of a file made by encode(); refuse anything else, naming why.

    Raises:
        CheckpointIntegrityError: bad magic, truncated, MAC mismatch (tampered, or another
            install's key), or made for another module, engine or set of directories.
    """
    if not data.startswith(MAGIC):
        raise CheckpointIntegrityError(f"{what} is not a saved interpreter state (bad magic)")
    if len(data) < len(MAGIC) + _U32.size + _U64.size + _MAC_BYTES:
        raise CheckpointIntegrityError(f"{what} is truncated ({len(data)} bytes)")
    body, mac = data[:-_MAC_BYTES], data[-_MAC_BYTES:]
    if not hmac.compare_digest(mac, hmac.new(install_key(), body, hashlib.sha256).digest()):
        raise CheckpointIntegrityError(
            f"{what} failed its integrity check (HMAC-SHA256): it was modified, truncated, or "
            "signed by another install; it was not loaded"
        )
    pos = len(MAGIC)
    (header_length,) = _U32.unpack_from(body, pos)
    pos += _U32.size
    if header_length > _MAX_HEADER or pos + header_length + _U64.size > len(body):
        raise CheckpointIntegrityError(f"{what} has a malformed header")
    header = json.loads(body[pos : pos + header_length])
    pos += header_length
    if header.get("format") != FORMAT:
        raise CheckpointIntegrityError(
            f"{what} has format {header.get('format')!r}; this version reads format {FORMAT}"
        )
    wanted = json.loads(json.dumps(dict(identity), sort_keys=True))
    if header.get("identity") != wanted:
        found = header.get("identity") or {}
        differs = sorted(k for k in {*wanted, *found} if wanted.get(k) != found.get(k))
        raise CheckpointIntegrityError(
            f"{what} was saved by a different interpreter setup ({', '.join(differs)} differ); "
            "it can only be restored into the same pinned module, engine settings and mounts"
        )
    (payload_length,) = _U64.unpack_from(body, pos)
    pos += _U64.size
    if pos + payload_length != len(body):
        raise CheckpointIntegrityError(f"{what} has a payload of the wrong length")
    raw = memoryview(body)[pos:]
    count = int(header["runs"])
    table_end = count * _RUN.size
    if table_end > len(raw):
        raise CheckpointIntegrityError(f"{what} has a run table longer than its payload")
    runs, at = [], table_end
    for index in range(count):
        start, length = _RUN.unpack_from(raw, index * _RUN.size)
        runs.append((start, bytes(raw[at : at + length])))
        at += length
    if at != len(raw):
        raise CheckpointIntegrityError(f"{what} has runs that do not add up to its payload")
    image = MemoryImage(int(header["size"]), tuple(runs), str(header["base"]))
    return image, dict(header.get("info") or {})


def save(path: Path, data: bytes) -> None:
    """Write a state file atomically (readers see the old file or the whole new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, data)
