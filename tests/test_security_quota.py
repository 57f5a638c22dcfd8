"""Hostile guests against the workspace quota: bytes and entries, whatever the guest does.

The quota bounds the host disk a session can occupy. Each test is an attack an audit found
(or a variation on one) that got past the first quota: reused stdio descriptor numbers, files
deleted while open, entries that cost nothing, and so on.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox import ExecutionPolicy, RuntimeType, Sandbox, create_sandbox

_MIB = 1 << 20


def _disk_usage(root: Path) -> int:
    """Bytes the host really spent below ``root`` (allocated blocks, links not followed)."""
    total = 0
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            total += os.lstat(os.path.join(directory, name)).st_blocks * 512
    return total


def _deleted_but_open_bytes(root: Path) -> int:
    """Disk held by files below ``root`` that were deleted while this process keeps them open.

    wasmtime opens the guest's files in this very process, so /proc/self/fd shows them.
    """
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(root)) and target.endswith(" (deleted)"):
                total += os.fstat(int(fd)).st_blocks * 512
        except OSError:
            continue
    return total


def _entries(root: Path) -> int:
    return sum(len(dirnames) + len(filenames) for _, dirnames, filenames in os.walk(root))


@pytest.fixture
def small_quota() -> ExecutionPolicy:
    return ExecutionPolicy(workspace_max_bytes=5 * _MIB, workspace_max_files=200)


def test_python_reused_stdio_descriptor_is_charged(small_quota: ExecutionPolicy) -> None:
    """Finding 1: close fd 0 and the next open used to get it, and fds 0-2 went uncharged."""
    with create_sandbox(RuntimeType.PYTHON, small_quota) as sandbox:
        result = sandbox.execute(
            "import os\n"
            "for fd in (0, 1, 2, 3):\n"
            "    try:\n"
            "        os.close(fd)\n"
            "        print('closed', fd)\n"
            "    except OSError as e:\n"
            "        print('kept', fd, e.errno)\n"
            "fd = os.open('/app/big', os.O_WRONLY | os.O_CREAT)\n"
            "print('fd', fd)\n"
            "written = 0\n"
            "try:\n"
            "    while written < (24 << 20):\n"
            "        written += os.write(fd, b'x' * (1 << 20))\n"
            "except OSError as e:\n"
            "    print('refused', e.strerror)\n"
            "print('written', written)\n"
        )
        assert "closed" not in result.stdout
        assert "refused No space left on device" in result.stdout, result.stdout + result.stderr
        assert (sandbox.workspace_path / "big").stat().st_size <= 5 * _MIB
        # stdout still works after the attempts to close it
        assert sandbox.execute("print('still here')").stdout == "still here\n"


def test_javascript_reused_stdio_descriptor_is_charged(small_quota: ExecutionPolicy) -> None:
    with create_sandbox(RuntimeType.JAVASCRIPT, small_quota) as sandbox:
        result = sandbox.execute(
            "for (const fd of [0, 1, 2]) console.log('close', fd, os.close(fd));\n"
            "const fd = os.open('/app/big', os.O_WRONLY | os.O_CREAT);\n"
            "const chunk = new Uint8Array(16 << 20).buffer;\n"
            "let written = 0;\n"
            "for (let i = 0; i < 128; i++) {\n"
            "  const n = os.write(fd, chunk, 0, chunk.byteLength);\n"
            "  if (n < 0) { console.log('refused', n); break; }\n"
            "  written += n;\n"
            "}\n"
            "console.log('written', written);\n"
        )
        assert "refused" in result.stdout, result.stdout + result.stderr
        assert (sandbox.workspace_path / "big").stat().st_size <= 5 * _MIB


def test_file_deleted_while_open_still_counts(small_quota: ExecutionPolicy) -> None:
    """Finding 2: an unlinked file kept open used to vanish from the quota and grow forever."""
    with create_sandbox(RuntimeType.PYTHON, small_quota) as sandbox:
        assert sandbox.execute("import os\nf = open('/app/h', 'wb')\nos.unlink('/app/h')").success
        outcomes = [
            sandbox.execute("f.write(b'y' * (2 << 20)); f.flush(); print('ok')") for _ in range(4)
        ]
        refused = [not r.success and "No space left" in r.stderr for r in outcomes]
        assert refused[:2] == [False, False] and any(refused[2:]), [r.stderr for r in outcomes]
        # Once the file is closed (and so gone from the disk) the space is free again.
        assert sandbox.execute("f.close()").success
        assert sandbox.execute("open('/app/new', 'wb').write(b'z' * (4 << 20))").success


def test_file_deleted_while_open_for_reading_still_counts(small_quota: ExecutionPolicy) -> None:
    """A variation: write, reopen read-only, unlink; the disk stays taken while it is open."""
    with create_sandbox(RuntimeType.PYTHON, small_quota) as sandbox:
        held = []
        for index in range(4):
            result = sandbox.execute(
                f"import os\nopen('/app/f{index}', 'wb').write(b'x' * (2 << 20))\n"
                f"held_{index} = open('/app/f{index}', 'rb')\nos.unlink('/app/f{index}')"
            )
            held.append(result.success)
        assert held[:2] == [True, True] and not all(held), held


def test_javascript_file_deleted_while_open_still_counts(small_quota: ExecutionPolicy) -> None:
    with create_sandbox(RuntimeType.JAVASCRIPT, small_quota) as sandbox:
        assert sandbox.execute("var f = std.open('/app/h', 'w'); os.remove('/app/h');").success
        errors = []
        for _ in range(4):
            result = sandbox.execute(
                "f.write(new Uint8Array(2 << 20).buffer, 0, 2 << 20); f.flush();"
                "console.log(f.error() ? 'refused' : 'ok')"
            )
            errors.append(result.stdout.strip())
        assert errors[:2] == ["ok", "ok"] and "refused" in errors[2:], errors


@pytest.mark.parametrize(
    "flood",
    [
        "n = 0\nwhile True:\n    os.mkdir(f'/app/d{n}'); n += 1",
        "n = 0\nwhile True:\n    open(f'/app/e{n}', 'w').close(); n += 1",
        "n = 0\nwhile True:\n    os.symlink('x' * 4000, f'/app/l{n}'); n += 1",
        "open('/app/t', 'w').close()\nn = 0\nwhile True:\n    os.link('/app/t', f'/app/h{n}'); n += 1",
        "n = 0\nwhile True:\n    os.makedirs('/app/' + '/'.join(['d'] * (n + 1)), exist_ok=True); n += 1",
    ],
    ids=["directories", "empty-files", "long-symlinks", "hard-links", "deep-nesting"],
)
def test_every_entry_is_charged(flood: str, small_quota: ExecutionPolicy) -> None:
    """Finding 3: directories, empty files and links used to cost nothing (590k inodes)."""
    with create_sandbox(RuntimeType.PYTHON, small_quota) as sandbox:
        for _ in range(3):
            result = sandbox.execute(
                "import os\ntry:\n    " + flood.replace("\n", "\n    ") + "\n"
                "except OSError as e:\n    print('stopped', e.strerror)"
            )
            assert "stopped No space left on device" in result.stdout, result.stderr
        assert _entries(sandbox.workspace_path) <= 200
        assert _disk_usage(sandbox.workspace_path) <= 5 * _MIB + 200 * 4096
        # The host's own accounting stays bounded and the session keeps answering.
        assert sandbox.execute("print(1)").stdout == "1\n"


def test_javascript_directory_flood_is_capped(small_quota: ExecutionPolicy) -> None:
    with create_sandbox(RuntimeType.JAVASCRIPT, small_quota) as sandbox:
        result = sandbox.execute(
            "let n = 0; while (os.mkdir(`/app/d${n}`) === 0) n++; console.log('stopped', n)"
        )
        assert result.stdout.startswith("stopped"), result.stderr
        assert int(result.stdout.split()[1]) <= 200
        assert _entries(sandbox.workspace_path) <= 200


def test_growing_a_file_by_truncate_is_charged(small_quota: ExecutionPolicy) -> None:
    with create_sandbox(RuntimeType.PYTHON, small_quota) as sandbox:
        result = sandbox.execute("f = open('/app/s', 'wb')\nf.truncate(1 << 40)")
        assert not result.success and "No space left" in result.stderr
        assert sandbox.execute("f.truncate(1 << 10)").success


def test_symlinks_may_not_point_out(python_sandbox: Sandbox) -> None:
    """Finding 4: links leaving the workspace were created on the host, a trap for host code."""
    result = python_sandbox.execute(
        "import os\nfor i, target in enumerate(['/etc', '../x', 'a/../../x', '../../proc/self/fd/0']):\n"
        "    try:\n        os.symlink(target, f'l{i}')\n        print('made', target)\n"
        "    except OSError as e:\n        print('refused', e.errno)\n"
        "os.symlink('inside.txt', 'ok')\nprint(os.readlink('ok'))"
    )
    assert result.stdout.count("refused 63") == 4, result.stdout + result.stderr
    assert result.stdout.endswith("inside.txt\n")
    assert not any((python_sandbox.workspace_path / f"l{i}").is_symlink() for i in range(4))


def test_writes_past_the_quota_leave_the_host_disk_bounded() -> None:
    """Everything at once over several calls: the host disk stays near the quota."""
    policy = ExecutionPolicy(workspace_max_bytes=2 * _MIB, workspace_max_files=100)
    with create_sandbox(RuntimeType.PYTHON, policy) as sandbox:
        for index in range(4):
            sandbox.execute(
                "import os\n"
                "try:\n"
                f"    f{index} = open('/app/g{index}', 'wb')\n"
                f"    os.unlink('/app/g{index}')\n"
                f"    for _ in range(6): f{index}.write(b'q' * (512 << 10)); f{index}.flush()\n"
                "except OSError:\n    pass\n"
                "try:\n"
                f"    for n in range(1000): os.mkdir(f'/app/m{index}_{{n}}')\n"
                "except OSError:\n    pass\n"
            )
        hidden = _deleted_but_open_bytes(sandbox.workspace_path)
        assert hidden > 0  # the attack did hold deleted files open
        assert _disk_usage(sandbox.workspace_path) + hidden <= 2 * _MIB + 100 * 4096
        assert _entries(sandbox.workspace_path) <= 100


def test_a_guest_cannot_exhaust_the_hosts_descriptors(runtime: RuntimeType) -> None:
    """Each guest descriptor is one of the host process's: a guest holds at most a few hundred."""
    hoard = {
        RuntimeType.PYTHON: (
            "open('/app/f', 'w').close()\nheld = []\n"
            "try:\n    while len(held) < 5000: held.append(open('/app/f'))\n"
            "except OSError as e:\n    print(len(held), e.strerror)\n"
        ),
        RuntimeType.JAVASCRIPT: (
            "writeText('f', ''); var held = [];"
            "while (held.length < 5000) { const f = std.open('/app/f', 'r'); if (!f) break;"
            " held.push(f); } console.log(held.length);"
        ),
    }
    with create_sandbox(runtime) as sandbox:
        result = sandbox.execute(hoard[runtime])
        count = int(result.stdout.split()[0])
        assert 100 < count <= 512, result.stdout
        if runtime is RuntimeType.PYTHON:
            assert "No file descriptors available" in result.stdout  # EMFILE
        release = {
            RuntimeType.PYTHON: "for f in held: f.close()\nopen('/app/f').close(); print('ok')",
            RuntimeType.JAVASCRIPT: "for (const f of held) f.close(); std.open('/app/f', 'r').close();"
            " console.log('ok')",
        }
        assert sandbox.execute(release[runtime]).stdout == "ok\n"


def test_preopens_cannot_be_closed(python_sandbox: Sandbox) -> None:
    result = python_sandbox.execute(
        "import os\nfor fd in range(0, 6):\n    try:\n        os.close(fd); print('closed', fd)\n"
        "    except OSError as e:\n        print(fd, e.errno)\nprint(sorted(os.listdir('/app')))"
    )
    assert "closed" not in result.stdout, result.stdout
    assert result.stdout.endswith("[]\n")
