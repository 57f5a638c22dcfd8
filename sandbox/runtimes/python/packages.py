"""Pure-Python packages added to what the Python guest's stdlib zip already holds, and
per-session installs.

The interpreter's zip brings 67 packages (numpy, pandas, scipy, matplotlib, openpyxl, ...). The
curated extras are ordinary dependencies of this distribution, installed from PyPI wheels with
it, for pure-Python packages the zip lacks. Their Python files are copied once per machine into
a cache directory, together with our guest helpers (``sandbox_utils``), and mounted read-only
at ``/packages``, which the driver puts on ``sys.path``.

``install_package`` adds one pure-Python wheel to one session's workspace
(``.sandbox-packages/``, which the driver puts on ``sys.path`` once it exists).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from functools import cache
from importlib import metadata, resources
from pathlib import Path

from sandbox.core.errors import SandboxError, WorkspacePathError
from sandbox.host import guest_tree

PACKAGES_GUEST_PATH = "/packages"
SESSION_PACKAGES_DIR = ".sandbox-packages"

# Distribution names, as pip knows them.
CURATED_PACKAGES = (
    "markdown",
    "PyPDF2",
    "odfpy",
    "mammoth",
    "cobble",  # mammoth's dependency
    "certifi",
    "idna",
    "urllib3",
)
_NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")
_PURE_WHEEL = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-none-any\.whl$"
)


class PackageInstallError(SandboxError):
    """A package cannot be installed into a session (native, not found, or a bad wheel)."""


@dataclass(frozen=True)
class PackageInfo:
    name: str
    version: str


def curated_packages() -> list[PackageInfo]:
    return [PackageInfo(name, metadata.version(name)) for name in CURATED_PACKAGES]


def guest_lib_sources() -> Path:
    """Our own guest-side modules (sandbox_utils), shipped with the package."""
    return Path(str(resources.files(__package__).joinpath("guest_lib")))


@cache
def packages_dir(cache_root: Path) -> Path:
    """The read-only tree mounted at /packages, built on first use and reused after."""
    fingerprint = hashlib.sha256(
        json.dumps(
            [[info.name, info.version] for info in curated_packages()]
            + sorted(
                [path.name, path.read_bytes().hex()] for path in guest_lib_sources().glob("*.py")
            )
        ).encode()
    ).hexdigest()[:16]
    target = cache_root / f"guest-packages-{fingerprint}"
    if target.is_dir():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".guest-packages-", dir=cache_root))
    for name in CURATED_PACKAGES:
        _copy_python_files(metadata.distribution(name), staging)
    for module in guest_lib_sources().glob("*.py"):
        shutil.copy2(module, staging / module.name)
    try:
        staging.rename(target)
    except OSError:  # another process finished first; theirs is identical
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _copy_python_files(distribution: metadata.Distribution, staging: Path) -> None:
    for file in distribution.files or []:
        relative = Path(str(file))
        if relative.parts[0] in ("..", "") or relative.is_absolute():
            continue  # scripts installed outside site-packages
        if "__pycache__" in relative.parts or relative.suffix in _NATIVE_SUFFIXES:
            continue
        source = Path(str(distribution.locate_file(file)))
        if source.is_file():
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def install_package(workspace: Path, package: str) -> PackageInfo:
    """Add a pure-Python wheel (a PyPI name or a local .whl path) to one session's workspace."""
    with tempfile.TemporaryDirectory() as download:
        wheel = Path(package) if package.endswith(".whl") else _download(package, Path(download))
        if not wheel.is_file():
            raise PackageInstallError(f"no wheel file at {wheel}; give a .whl path or a PyPI name")
        match = _PURE_WHEEL.match(wheel.name)
        if match is None:
            raise PackageInstallError(
                f"{wheel.name} is not a pure-Python wheel (its tag must end in -none-any): "
                "the WebAssembly guest cannot load compiled extension modules. Use a pure-Python "
                "alternative, or one of the packages already available (list_available_packages)"
            )
        try:
            with zipfile.ZipFile(wheel) as archive:
                members = [info for info in archive.infolist() if not info.is_dir()]
                for info in members:
                    _check_member(info.filename, wheel.name)
                # Written through the workspace without following links: the guest owns it and
                # may have made the packages directory a symlink to somewhere on the host.
                for info in members:
                    guest_tree.write_file(
                        workspace, f"{SESSION_PACKAGES_DIR}/{info.filename}", archive.read(info)
                    )
        except (OSError, zipfile.BadZipFile, WorkspacePathError) as error:
            raise PackageInstallError(f"cannot unpack {wheel.name}: {error}") from None
        return PackageInfo(match["name"], match["version"])


def _check_member(member: str, wheel: str) -> None:
    parts = Path(member).parts
    if Path(member).is_absolute() or ".." in parts:
        raise PackageInstallError(f"{wheel} contains an unsafe path {member!r}; refusing it")


def _download(name: str, directory: Path) -> Path:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "--dest",
            str(directory),
            name,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    wheels = list(directory.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        detail = done.stderr.strip().splitlines()[-1:] or ["no wheel found"]
        raise PackageInstallError(f"cannot download a wheel for {name!r}: {detail[0]}")
    return wheels[0]
