"""The guest sees only what it is handed: workspace, read-only mounts, whitelisted env."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox import ExecutionPolicy, RuntimeType, Sandbox, create_sandbox


def test_guest_sees_only_its_mounts(python_sandbox: Sandbox) -> None:
    result = python_sandbox.execute(
        "import os\nprint([os.path.isdir(p) for p in ['/app', '/.sandbox', '/etc', '/tmp', '/home']])"
    )
    assert result.stdout == "[True, False, False, False, False]\n"  # no control directory
    assert "FileNotFoundError" in python_sandbox.execute("import os\nos.listdir('/')").stderr


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../../../../etc/passwd", "/app/../../etc/passwd", "/proc/self/environ"]
)
def test_host_files_are_out_of_reach(python_sandbox: Sandbox, path: str) -> None:
    result = python_sandbox.execute(f"print(open({path!r}).read())")
    assert not result.success
    assert "root:" not in result.stdout
    assert "Error" in result.stderr


def test_javascript_cannot_read_host_files(js_sandbox: Sandbox) -> None:
    result = js_sandbox.execute(
        "console.log(std.loadFile('/etc/passwd'), readText('../../etc/passwd'))"
    )
    assert not result.success
    assert "root:" not in result.stdout


def test_symlink_made_in_guest_cannot_escape(python_sandbox: Sandbox) -> None:
    result = python_sandbox.execute(
        "import os\n"
        "for target in ['/etc/passwd', '../../../../../../etc/passwd']:\n"
        "    name = 'link%d' % len(target)\n"
        "    try:\n"
        "        os.symlink(target, name)\n"
        "    except OSError as e:\n"
        "        print('symlink refused', e.errno)\n"
        "        continue\n"
        "    try:\n"
        "        print(open(name).read()[:10])\n"
        "    except OSError as e:\n"
        "        print('read refused', e.errno)\n"
    )
    assert "root:" not in result.stdout
    assert result.stdout.count("refused") == 2


def test_symlink_planted_on_host_cannot_escape(python_sandbox: Sandbox) -> None:
    os.symlink("/etc/passwd", python_sandbox.workspace_path / "planted")
    result = python_sandbox.execute("print(open('planted').read())")
    assert not result.success
    assert "root:" not in result.stdout


def test_host_environment_does_not_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_SECRET_TOKEN", "do-not-leak")
    policy = ExecutionPolicy(env={"GREETING": "hello"})
    with create_sandbox(RuntimeType.PYTHON, policy) as sandbox:
        result = sandbox.execute(
            "import os\nprint(sorted(os.environ))\nprint(os.environ['GREETING'])"
        )
    # Only the policy's variables and the interpreter's own settings: nothing from the host.
    assert result.stdout.splitlines() == [
        "['GREETING', 'MPLBACKEND']",
        "hello",
    ]


def test_javascript_sees_only_whitelisted_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_SECRET_TOKEN", "do-not-leak")
    with create_sandbox(RuntimeType.JAVASCRIPT, ExecutionPolicy(env={"MODE": "test"})) as sandbox:
        result = sandbox.execute("console.log(JSON.stringify(std.getenviron()))")
    assert result.stdout == '{"MODE":"test"}\n'


def test_no_network(python_sandbox: Sandbox) -> None:
    result = python_sandbox.execute(
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "s.connect(('127.0.0.1', 80))\n"
        "print('connected')"
    )
    assert not result.success
    assert "connected" not in result.stdout


def test_no_processes(python_sandbox: Sandbox) -> None:
    result = python_sandbox.execute("import subprocess\nsubprocess.run(['ls'])")
    assert not result.success
    assert "Error" in result.stderr


def test_read_only_mount(tmp_path: Path) -> None:
    (tmp_path / "input.csv").write_text("a,b\n1,2\n")
    policy = ExecutionPolicy(mounts={tmp_path: "/data"})
    with create_sandbox(RuntimeType.PYTHON, policy) as sandbox:
        read = sandbox.execute("print(open('/data/input.csv').read().splitlines()[1])")
        write = sandbox.execute("open('/data/new.txt', 'w').write('x')")
    assert read.stdout == "1,2\n"
    assert not write.success
    assert not (tmp_path / "new.txt").exists()


def test_policy_rejects_bad_mounts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an existing host directory"):
        ExecutionPolicy(mounts={tmp_path / "missing": "/data"})
    with pytest.raises(ValueError, match="overlap"):
        ExecutionPolicy(mounts={tmp_path: "/app/data"})
    with pytest.raises(ValueError, match="reserved"):
        ExecutionPolicy(mounts={tmp_path: "/.sandbox"})
    with pytest.raises(ValueError, match="absolute guest path"):
        ExecutionPolicy(guest_mount_path="relative")
