"""Hostile guests and callers against checkpoints, undo and fork.

A checkpoint copies the workspace to host-only storage and a restore or fork writes it back,
every path as its own file. That turns anything the guest made cheaply on disk into something
expensive on the host: hard links (one inode, many paths) and sparse files (a huge size on a
few blocks). Each test here is such an attack; each failed before the fix (a fork wrote 600 MiB
for a 5 MiB quota; a sparse file made the automatic undo point copy 1 GiB).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox import CheckpointError, ExecutionPolicy, RuntimeType, create_sandbox

_MIB = 1 << 20


def _disk_usage(root: Path) -> int:
    """Bytes the host really spent below ``root`` (allocated blocks, each inode once)."""
    seen: set[int] = set()
    total = 0
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            info = os.lstat(os.path.join(directory, name))
            if info.st_ino not in seen:
                seen.add(info.st_ino)
                total += info.st_blocks * 512
    return total


@pytest.fixture
def policy() -> ExecutionPolicy:
    return ExecutionPolicy(
        workspace_max_bytes=5 * _MIB, workspace_max_files=200, state_budget_bytes=64 * _MIB
    )


_HARD_LINKS = """
import os
with open('/app/a', 'wb') as f:
    f.write(b'z' * (4 << 20))
for i in range(100):
    os.link('/app/a', f'/app/l{i}')
print('linked')
"""


def test_hard_links_cannot_make_a_fork_write_past_the_quota(policy: ExecutionPolicy) -> None:
    with create_sandbox(runtime=RuntimeType.PYTHON, policy=policy) as sandbox:
        result = sandbox.execute(_HARD_LINKS)
        assert result.stdout.strip() == "linked", result.stderr
        with pytest.raises(CheckpointError, match="workspace_max_bytes"):
            sandbox.fork()
        with pytest.raises(CheckpointError, match="hard links"):
            sandbox.checkpoint("links")
        assert sandbox.checkpoints() == []
        assert _disk_usage(sandbox.workspace.parent) < 2 * policy.workspace_max_bytes


def test_a_sparse_file_is_not_copied_by_the_undo_point(policy: ExecutionPolicy) -> None:
    undoable = policy.model_copy(update={"undo_last_cell": True})
    with create_sandbox(runtime=RuntimeType.PYTHON, policy=undoable) as sandbox:
        result = sandbox.execute(
            "import os\n"
            "fd = os.open('/app/s', os.O_WRONLY | os.O_CREAT)\n"
            "os.pwrite(fd, b'x', 1 << 30)\n"
            "os.close(fd)\n"
            "print(os.stat('/app/s').st_size)"
        )
        assert result.stdout.strip() == str((1 << 30) + 1), result.stderr
        assert sandbox.execute("print(2)").stdout.strip() == "2"
        assert _disk_usage(sandbox.workspace.parent) < 2 * policy.workspace_max_bytes
        # The undo point of the first cell is gone, not kept to undo two cells at once.
        with pytest.raises(CheckpointError, match="nothing to undo"):
            sandbox.undo()


def test_javascript_checkpoints_are_not_free(policy: ExecutionPolicy) -> None:
    """A JavaScript checkpoint keeps the replayed cells' source in host memory: it counts."""
    small = policy.model_copy(update={"state_budget_bytes": 1 * _MIB})
    with create_sandbox(runtime=RuntimeType.JAVASCRIPT, policy=small) as sandbox:
        assert sandbox.execute("// " + "x" * 300_000 + "\nconsole.log(1)").success
        taken = 0
        with pytest.raises(CheckpointError, match="state budget"):
            for _ in range(10):
                sandbox.checkpoint()
                taken += 1
        assert taken == 3


def test_javascript_replay_history_stays_bounded(policy: ExecutionPolicy) -> None:
    small = policy.model_copy(update={"state_budget_bytes": 1 * _MIB})
    with create_sandbox(runtime=RuntimeType.JAVASCRIPT, policy=small) as sandbox:
        for _ in range(4):
            assert sandbox.execute("// " + "x" * 300_000 + "\nglobalThis.n = 1").success
        with pytest.raises(CheckpointError, match="cannot be checkpointed"):
            sandbox.checkpoint()
        with pytest.raises(CheckpointError, match="cannot be forked"):
            sandbox.fork()


def test_restore_replaces_a_directory_the_guest_swapped_for_a_link(
    policy: ExecutionPolicy,
) -> None:
    with create_sandbox(runtime=RuntimeType.PYTHON, policy=policy) as sandbox:
        sandbox.execute(
            "import os\nos.mkdir('/app/d')\nopen('/app/d/f', 'w').write('checkpointed')"
        )
        sandbox.checkpoint("../../escape")  # a label is a name, never a path
        swap = sandbox.execute(
            "import os, shutil\n"
            "shutil.rmtree('/app/d')\n"
            "os.mkdir('/app/other')\n"
            "open('/app/other/f', 'w').write('the guest kept this')\n"
            "os.symlink('other', '/app/d')\n"
            "os.symlink('d/f', '/app/f-link')"
        )
        assert swap.success, swap.stderr
        sandbox.restore("../../escape")
        workspace = sandbox.workspace
        assert not (workspace / "d").is_symlink()
        assert (workspace / "d" / "f").read_text() == "checkpointed"
        assert not (workspace / "other").exists() and not (workspace / "f-link").exists()
        names = {p.name for p in workspace.parent.rglob("*")}
        assert "escape" not in names
        assert sandbox.execute("print(open('/app/d/f').read())").stdout == "checkpointed\n"


@pytest.mark.parametrize("runtime", [RuntimeType.PYTHON, RuntimeType.JAVASCRIPT])
def test_checkpoints_outlive_an_eviction_without_its_history(
    runtime: RuntimeType, policy: ExecutionPolicy
) -> None:
    """An evicted session keeps its checkpoints (a Python one's pages wait in a signed file,
    not in memory), and its next interpreter does not inherit the evicted one's replay history."""
    first, second = {
        RuntimeType.PYTHON: ("a = 1", "b = 2"),
        RuntimeType.JAVASCRIPT: ("globalThis.a = 1", "globalThis.b = 2"),
    }[runtime]
    with create_sandbox(runtime=runtime, policy=policy) as sandbox:
        assert sandbox.execute(first).success
        sandbox.checkpoint("before-eviction")
        assert sandbox.evict("evicted_idle")
        assert [made.label for made in sandbox.checkpoints()] == ["before-eviction"]
        assert sandbox.execute(second).success
        made = sandbox.checkpoint()
        assert made.replay_cells == (1 if runtime is RuntimeType.JAVASCRIPT else 0)
        sandbox.restore("before-eviction")
        probe = {
            RuntimeType.PYTHON: "print('b' in globals())",
            RuntimeType.JAVASCRIPT: "console.log(typeof globalThis.b)",
        }[runtime]
        assert (
            sandbox.execute(probe).stdout
            == {
                RuntimeType.PYTHON: "False\n",
                RuntimeType.JAVASCRIPT: "undefined\n",
            }[runtime]
        )
