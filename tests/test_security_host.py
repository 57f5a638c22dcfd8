"""Host code around the guest never follows a link the guest (or anyone) planted in a workspace.

Each test plants the link on the host side, as a guest could before links pointing out were
refused, or as an older version of this package allowed: the host must refuse it, not resolve
it, and never block or touch a file outside the workspace.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from sandbox import (
    ExecutionPolicy,
    RuntimeType,
    create_sandbox,
    delete_session_file,
    install_package,
    read_session_file,
    write_session_file,
)
from sandbox.core.errors import SandboxError, WorkspacePathError
from sandbox.sessions import logs


def _in_thread(action: object, seconds: float) -> bool:
    """Run ``action`` on a thread; whether it finished within ``seconds``."""
    assert callable(action)
    worker = threading.Thread(target=action, daemon=True)
    worker.start()
    worker.join(seconds)
    return not worker.is_alive()


@pytest.mark.parametrize("planted", ["link-to-stdin", "link-to-fifo"])
def test_planted_report_never_blocks_the_host(planted: str, tmp_path: Path) -> None:
    """Finding 4a: the host read report.json through a link to its own stdin and hung.

    A FIFO with no writer blocks whoever opens it for reading, as a pipe on stdin does.
    (A guest cannot make a FIFO itself: WASI has no mknod.)
    """
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with create_sandbox(RuntimeType.PYTHON, auto_persist_globals=True) as sandbox:
        assert sandbox.execute("x = 1").success
        report = sandbox.workspace_path / ".sandbox-state" / "report.json"
        report.unlink()
        os.symlink("/proc/self/fd/0" if planted == "link-to-stdin" else fifo, report)
        results = []
        assert _in_thread(lambda: results.append(sandbox.execute("y = 2")), 30)
        assert results[0].metadata["persisted_globals"] == []


def test_guest_cannot_point_its_state_at_another_session(tmp_path: Path) -> None:
    """Finding 4b: a client read another client's persisted globals through a state link."""
    with (
        create_sandbox(RuntimeType.PYTHON, auto_persist_globals=True) as victim,
        create_sandbox(RuntimeType.PYTHON, auto_persist_globals=True) as attacker,
    ):
        assert victim.execute("victim_secret_name = 42").success
        state = attacker.workspace_path / ".sandbox-state"
        if state.exists():
            for child in state.iterdir():
                child.unlink()
            state.rmdir()
        os.symlink(victim.workspace_path / ".sandbox-state", state)
        result = attacker.execute("mine = 1")
        leaked = str(result.metadata.get("persisted_globals")) + str(
            result.metadata.get("unsaved_globals")
        )
        assert "victim_secret_name" not in leaked
        # And the guest itself cannot make such a link.
        made = attacker.execute(
            "import os\ntry:\n    os.symlink('../../other/workspace/.sandbox-state', 's')\n"
            "except OSError as e:\n    print(e.errno)"
        )
        assert made.stdout == "63\n"


def test_install_package_refuses_a_linked_packages_directory(tmp_path: Path) -> None:
    """Finding 4c: install_package followed /app/.sandbox-packages to a host directory."""
    import zipfile

    wheel = tmp_path / "tinypkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("tinypkg.py", "X = 1\n")
        archive.writestr("evil.pth", "import os\n")
    outside = tmp_path / "host-site-packages"
    outside.mkdir()
    with create_sandbox(RuntimeType.PYTHON) as sandbox:
        os.symlink(outside, sandbox.workspace_path / ".sandbox-packages")
        with pytest.raises(SandboxError, match="symlink"):
            install_package(sandbox.session_id, str(wheel))
    assert list(outside.iterdir()) == []


def test_file_api_against_a_guest_swapping_a_directory_for_a_link(tmp_path: Path) -> None:
    """Finding 5: check-then-open raced a guest swapping a directory and a link in a loop."""
    outside = tmp_path / "host-secrets"
    outside.mkdir()
    (outside / "secret.txt").write_text("HOST SECRET")
    (outside / "victim.txt").write_text("must survive")
    policy = ExecutionPolicy(timeout_seconds=10)
    with create_sandbox(RuntimeType.PYTHON, policy) as sandbox:
        workspace = sandbox.workspace_path
        (workspace / "d").mkdir()
        (workspace / "d" / "secret.txt").write_text("harmless")
        os.symlink(outside, workspace / "evil")
        ready = workspace / "swapping"
        swaps: list[object] = []

        def swap() -> None:
            swaps.append(
                sandbox.execute(
                    "import os, time\nopen('swapping', 'w').close()\n"
                    "end = time.monotonic() + 3\nn = 0\n"
                    "swaps = [('d', 'real'), ('evil', 'd'), ('d', 'evil'), ('real', 'd')]\n"
                    "while time.monotonic() < end:\n"
                    "    for old, new in swaps:\n"
                    "        try:\n"
                    "            os.rename(old, new); n += 1\n"
                    "        except OSError:\n"  # the host's write may have made a new 'd'
                    "            pass\n"
                    "print(n)"
                )
            )

        worker = threading.Thread(target=swap)
        worker.start()
        reads = refused = 0
        while worker.is_alive():
            if not ready.exists():
                time.sleep(0.001)  # yield the GIL: the guest's boot needs it for host calls
                continue
            for action in (
                lambda: read_session_file(sandbox.session_id, "d/secret.txt"),
                lambda: write_session_file(sandbox.session_id, "d/victim.txt", "x"),
                lambda: delete_session_file(sandbox.session_id, "d/victim.txt"),
            ):
                try:
                    data = action()
                except (OSError, WorkspacePathError):
                    refused += 1
                    continue
                if isinstance(data, bytes):
                    reads += 1
                    assert data == b"harmless"
        worker.join()
        assert reads > 0 and refused > 0, (reads, refused, swaps)
    assert sorted(path.name for path in outside.iterdir()) == ["secret.txt", "victim.txt"]
    assert (outside / "victim.txt").read_text() == "must survive"


def test_preserved_logs_stay_bounded() -> None:
    """Finding 7: preserve_logs grew outside the quota (21 MB after 10 calls, 5 MiB quota)."""
    policy = ExecutionPolicy(preserve_logs=True, log_max_bytes=256 * 1024)
    with create_sandbox(RuntimeType.PYTHON, policy) as sandbox:
        for _ in range(10):
            assert sandbox.execute("print('x' * (600 * 1024))").success
        session_directory = sandbox.workspace_path.parent
        kept = logs.read(session_directory)
        sizes = [path.stat().st_size for path in session_directory.glob("logs*.jsonl")]
    assert sum(sizes) <= 2 * 256 * 1024
    assert kept and "cut to fit the log size limit" in kept[-1]["result"]["stdout"]  # type: ignore[index]
