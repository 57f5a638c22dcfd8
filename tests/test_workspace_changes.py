"""Changes made to a workspace between calls, by anyone, are seen by the next call.

A session call walks its workspace only when something changed it since the last walk (an
inotify watch per directory, sandbox/host/tree_watch.py). These tests change the workspace
from the host between calls, in the ways a stale view would get wrong: files in nested
directories, contents rewritten in place, metadata only, and the quota.
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox import ExecutionPolicy, RuntimeType, create_sandbox


def test_files_the_host_adds_between_calls_are_not_the_cells(tmp_path: Path) -> None:
    with create_sandbox(RuntimeType.PYTHON) as sandbox:
        assert sandbox.execute("import os; os.makedirs('deep/er'); open('a.txt', 'w')").success
        assert sandbox.execute("x = 1").files_created == []  # nothing changed: no walk
        workspace = sandbox.workspace_path
        (workspace / "deep" / "er" / "host.txt").write_text("from the host")
        (workspace / "a.txt").write_text("rewritten in place by the host")
        mine = sandbox.execute("open('mine.txt', 'w').write('x')")
        assert (mine.files_created, mine.files_modified) == (["mine.txt"], [])
        os.utime(workspace / "deep" / "er" / "host.txt", ns=(1, 1))
        appended = sandbox.execute("open('a.txt', 'a').write('!')")
        assert (appended.files_created, appended.files_modified) == ([], ["a.txt"])


def test_the_quota_counts_what_the_host_wrote_between_calls() -> None:
    policy = ExecutionPolicy(workspace_max_bytes=1 << 20)
    with create_sandbox(RuntimeType.PYTHON, policy) as sandbox:
        assert sandbox.execute("open('small.bin', 'wb').write(b'x' * 1000)").success
        assert sandbox.execute("x = 1").success  # the workspace is known and unchanged
        (sandbox.workspace_path / "small.bin").write_bytes(b"y" * (900 << 10))
        result = sandbox.execute("open('more.bin', 'wb').write(b'z' * (200 << 10))")
        assert not result.success
        assert "No space left on device" in result.stderr


def test_a_directory_the_guest_made_is_watched_too() -> None:
    with create_sandbox(RuntimeType.PYTHON) as sandbox:
        assert sandbox.execute("import os; os.mkdir('new')").success
        assert sandbox.execute("x = 1").success
        (sandbox.workspace_path / "new" / "host.txt").write_text("x")
        result = sandbox.execute("open('new/guest.txt', 'w').write('y')")
        assert result.files_created == ["new/guest.txt"]
