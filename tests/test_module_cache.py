"""Compiled runtimes are cached per machine: compiled once, even by processes starting at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.host.module_cache import clear_cache

_LOAD = (
    "from sandbox.runtimes import runtime_for\n"
    "program = runtime_for('javascript')\n"
    "program.prepare()\n"
    "print('prepared', program.is_prepared())\n"
)


def _start(cache: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _LOAD],
        env={**os.environ, "LLM_WASM_SANDBOX_CACHE_DIR": str(cache)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_processes_starting_at_once_compile_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    processes = [_start(cache) for _ in range(3)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert all(out == "prepared True\n" for out, _err in outputs), outputs
    compiled = [err for _out, err in outputs if "compiling the quickjs" in err]
    assert len(compiled) == 1, [err for _out, err in outputs]
    artifacts = list(cache.glob("*.cwasm"))
    assert len(artifacts) == 1 and artifacts[0].stat().st_size > 0
    assert not list(cache.glob("*.part"))  # nothing half-written is left where it is read


def test_a_damaged_artifact_is_compiled_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _start(cache).communicate(timeout=300)
    assert first[0] == "prepared True\n"
    (artifact,) = cache.glob("*.cwasm")
    artifact.write_bytes(b"not a compiled module")
    again = _start(cache).communicate(timeout=300)
    assert again[0] == "prepared True\n" and "compiling the quickjs" in again[1]
    assert artifact.stat().st_size > 1000


def test_cache_clear_empties_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    assert _start(cache).communicate(timeout=300)[0] == "prepared True\n"
    monkeypatch.setenv("LLM_WASM_SANDBOX_CACHE_DIR", str(cache))
    assert clear_cache() > 0
    assert not list(cache.glob("*.cwasm"))


def test_a_new_build_removes_older_builds_of_the_same_runtime(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    older = cache / "quickjs-ng-0.17.0-00000000000000000000-wasmtime48.0.0-0-x86_64.cwasm"
    older.write_bytes(b"an artifact of another wasmtime")
    other_runtime = cache / "python-3.15.0-snapshot-0000-wasmtime49.0.0-0-x86_64.cwasm"
    other_runtime.write_bytes(b"kept")
    assert _start(cache).communicate(timeout=300)[0] == "prepared True\n"
    assert not older.exists() and other_runtime.exists()


def test_a_first_compile_is_not_charged_to_the_boot_deadline(tmp_path: Path) -> None:
    """On a new machine the first sandbox compiles its runtime first; its boot still succeeds.

    The boot deadline is cut to 0.3 s, well under the compile (about a second here, minutes for
    Python), and far over a QuickJS boot (milliseconds).
    """
    script = (
        "import dataclasses\n"
        "import sandbox.host.parked_guest as parked\n"
        "parked.BOOT_LIMITS = dataclasses.replace(parked.BOOT_LIMITS, timeout_seconds=0.3)\n"
        "from sandbox import create_sandbox\n"
        "print(create_sandbox('javascript').execute('console.log(1 + 1)').stdout, end='')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "LLM_WASM_SANDBOX_CACHE_DIR": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "compiling the quickjs" in done.stderr
    assert done.returncode == 0 and done.stdout == "2\n", done.stderr
