"""The sdist and wheel build, pass twine check, and the wheel runs hello worlds in a fresh venv."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*command: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--outdir", dist)
    wheel = next(dist.glob("*.whl"))
    sdist = next(dist.glob("*.tar.gz"))
    assert wheel.name.endswith("-py3-none-any.whl")
    _run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)

    with zipfile.ZipFile(wheel) as wheel_archive:
        wheel_files = set(wheel_archive.namelist())
    assert {"sandbox/py.typed", "sandbox/config/policy.toml"} <= wheel_files
    assert "sandbox/runtimes/python/guest_driver.py" in wheel_files
    assert "sandbox/runtimes/javascript/guest_driver.js" in wheel_files
    assert "sandbox/runtimes/javascript/vendor/csv-simple.js" in wheel_files  # requireVendor
    assert "mcp_server/__main__.py" in wheel_files  # 0.4's `python -m mcp_server`
    with tarfile.open(sdist) as sdist_archive:
        sdist_files = {name.split("/", 1)[1] for name in sdist_archive.getnames() if "/" in name}
    assert {"config/policy.toml", "LICENSE", "README.md", "tests/test_limits.py"} <= sdist_files

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    _run(venv / "bin" / "pip", "install", "--quiet", wheel)
    script = (
        "from sandbox import create_sandbox, RuntimeType\n"
        "for kind, code in [(RuntimeType.PYTHON, 'print(\"hello\")'), "
        "(RuntimeType.JAVASCRIPT, 'console.log(\"hello\")')]:\n"
        "    with create_sandbox(kind) as sb:\n"
        "        print(kind.value, sb.execute(code).stdout.strip())\n"
        "with create_sandbox(RuntimeType.JAVASCRIPT) as sb:\n"
        '    print(sb.execute(\'console.log(requireVendor("string-utils").slugify("A B"))\')'
        ".stdout.strip())\n"
    )
    output = _run(venv / "bin" / "python", "-c", script, cwd=tmp_path)
    assert output == "python hello\njavascript hello\na-b\n"
    version = _run(venv / "bin" / "python", "-m", "mcp_server", "--version", cwd=tmp_path)
    assert version.startswith("llm-wasm-mcp ")
