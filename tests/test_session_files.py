"""Session management API: files in and out of workspaces, listing, pruning, metadata.

Everything runs against real directories under tmp_path; symlinks are real host symlinks, as
a guest would leave them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandbox.core.errors import InvalidSessionIdError, SessionNotFoundError, WorkspacePathError
from sandbox.sessions.files import (
    delete_session_file,
    delete_session_workspace,
    list_session_files,
    list_sessions,
    prune_sessions,
    read_session_file,
    write_session_file,
)
from sandbox.sessions.metadata import (
    METADATA_FILE,
    SessionMetadata,
    load_metadata,
    record_creation,
    record_execution,
)
from sandbox.sessions.workspace import HOME_ENV, open_workspace, sessions_root, spare_workspace

DAY = 86400.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def workspace(root: Path) -> Path:
    created = open_workspace(root, "s1")
    record_creation(created.parent, "s1", "python")
    return created


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A host directory outside every workspace, holding a file the guest must not reach."""
    directory = tmp_path / "host-secrets"
    directory.mkdir()
    (directory / "secret.txt").write_text("top secret")
    return directory


def _age(path: Path, days: float) -> None:
    stamp = time.time() - days * DAY
    os.utime(path, (stamp, stamp))


# --- files in and out of a workspace -------------------------------------------------------


def test_write_read_list_delete_round_trip(root: Path, workspace: Path) -> None:
    write_session_file("s1", "data.bin", b"\x00\x01\xff", root=root)
    write_session_file("s1", "nested/deeper/notes.txt", "héllo", root=root)

    assert (workspace / "nested" / "deeper" / "notes.txt").read_bytes() == "héllo".encode()
    assert read_session_file("s1", "data.bin", root=root) == b"\x00\x01\xff"
    assert read_session_file("s1", Path("nested/deeper/notes.txt"), root=root) == b"h\xc3\xa9llo"
    assert list_session_files("s1", root=root) == ["data.bin", "nested/deeper/notes.txt"]

    delete_session_file("s1", "nested/deeper/notes.txt", root=root)
    assert list_session_files("s1", root=root) == ["data.bin"]
    assert not (workspace / "nested" / "deeper" / "notes.txt").exists()


def test_write_replaces_existing_content(root: Path, workspace: Path) -> None:
    write_session_file("s1", "out.txt", "a much longer first version", root=root)
    write_session_file("s1", "out.txt", "short", root=root)
    assert read_session_file("s1", "out.txt", root=root) == b"short"


def test_missing_file_in_existing_session_is_an_os_error(root: Path, workspace: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_session_file("s1", "nope.txt", root=root)
    with pytest.raises(FileNotFoundError):
        delete_session_file("s1", "nope.txt", root=root)


@pytest.mark.parametrize(
    ("bad_path", "reason"),
    [
        ("/etc/passwd", "is absolute"),
        ("../s2/workspace/x.txt", "'..'"),
        ("a/../../x.txt", "'..'"),
        ("", "is empty"),
        (".", "is empty"),
        ("a\0b", "NUL"),
    ],
)
def test_unsafe_paths_are_refused(root: Path, workspace: Path, bad_path: str, reason: str) -> None:
    for attempt in (
        lambda: write_session_file("s1", bad_path, b"x", root=root),
        lambda: read_session_file("s1", bad_path, root=root),
        lambda: delete_session_file("s1", bad_path, root=root),
    ):
        with pytest.raises(WorkspacePathError) as caught:
            attempt()
        assert reason in str(caught.value)
        assert repr(bad_path) in str(caught.value)
        assert "relative path inside the workspace" in str(caught.value)
    assert list_session_files("s1", root=root) == []


def test_symlinked_directory_to_host_is_refused(root: Path, workspace: Path, outside: Path) -> None:
    os.symlink(outside, workspace / "link")

    with pytest.raises(WorkspacePathError, match="symlink 'link'"):
        read_session_file("s1", "link/secret.txt", root=root)
    with pytest.raises(WorkspacePathError, match="symlink 'link'"):
        write_session_file("s1", "link/planted.txt", "x", root=root)
    with pytest.raises(WorkspacePathError, match="symlink 'link'"):
        delete_session_file("s1", "link/secret.txt", root=root)

    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "top secret"


def test_symlink_as_final_or_nested_component_is_refused(
    root: Path, workspace: Path, outside: Path
) -> None:
    (workspace / "dir").mkdir()
    os.symlink(outside / "secret.txt", workspace / "dir" / "leak.txt")

    with pytest.raises(WorkspacePathError, match=r"symlink 'dir/leak\.txt'"):
        read_session_file("s1", "dir/leak.txt", root=root)
    with pytest.raises(WorkspacePathError, match=r"symlink 'dir/leak\.txt'"):
        write_session_file("s1", "dir/leak.txt", "overwritten", root=root)
    with pytest.raises(WorkspacePathError, match=r"symlink 'dir/leak\.txt'"):
        delete_session_file("s1", "dir/leak.txt", root=root)

    assert (outside / "secret.txt").read_text() == "top secret"


def test_listing_and_deleting_do_not_follow_symlinks(
    root: Path, workspace: Path, outside: Path
) -> None:
    write_session_file("s1", "own.txt", "12345", root=root)
    os.symlink(outside, workspace / "dir-link")
    os.symlink(outside / "secret.txt", workspace / "file-link")

    assert list_session_files("s1", root=root) == ["own.txt"]
    (info,) = list_sessions(root=root)
    assert (info.size_bytes, info.file_count) == (5, 1)

    delete_session_workspace("s1", root=root)
    assert not (root / "s1").exists()
    assert (outside / "secret.txt").read_text() == "top secret"


# --- session ids --------------------------------------------------------------------------

_BY_ID: list[Callable[[str, Path], object]] = [
    lambda sid, root: write_session_file(sid, "x.txt", "x", root=root),
    lambda sid, root: read_session_file(sid, "x.txt", root=root),
    lambda sid, root: list_session_files(sid, root=root),
    lambda sid, root: delete_session_file(sid, "x.txt", root=root),
    lambda sid, root: delete_session_workspace(sid, root=root, missing_ok=False),
]
_OPERATIONS = ["write", "read", "list", "delete_file", "delete_workspace"]


@pytest.mark.parametrize("operation", _BY_ID, ids=_OPERATIONS)
def test_unknown_session_is_reported(
    root: Path, workspace: Path, operation: Callable[[str, Path], object]
) -> None:
    with pytest.raises(SessionNotFoundError, match="no session 'ghost'"):
        operation("ghost", root)
    assert not (root / "ghost").exists()


@pytest.mark.parametrize("operation", _BY_ID, ids=_OPERATIONS)
@pytest.mark.parametrize("bad_id", ["../x", "a/b", ".staging", ""])
def test_invalid_session_id_is_refused(
    root: Path, workspace: Path, operation: Callable[[str, Path], object], bad_id: str
) -> None:
    with pytest.raises(InvalidSessionIdError, match="invalid session id"):
        operation(bad_id, root)
    assert sorted(os.listdir(root)) == ["s1"]


# --- listing sessions ---------------------------------------------------------------------


def test_list_sessions_reports_metadata_and_usage(root: Path) -> None:
    first = open_workspace(root, "first")
    record_creation(first.parent, "first", "python")
    record_execution(first.parent, "python")
    record_execution(first.parent, "javascript")
    write_session_file("first", "a.txt", "abc", root=root)
    write_session_file("first", "sub/b.txt", "defgh", root=root)

    second = open_workspace(root, "second")
    record_creation(second.parent, "second", "python")

    spare_workspace(root)  # a pool spare: no session.json, so not listed
    (root / "not a session").mkdir()
    (root / "stray-file").write_text("x")

    sessions = list_sessions(root=root)

    assert sorted(info.session_id for info in sessions) == ["first", "second"]
    recorded, fresh = sorted(sessions, key=lambda info: info.session_id)
    assert recorded.runtime == "javascript"
    assert recorded.executions == 2
    assert recorded.created_at is not None
    assert recorded.created_at <= recorded.last_used_at <= datetime.now(UTC)
    assert recorded.workspace_path == str(first)
    assert (recorded.size_bytes, recorded.file_count) == (8, 2)

    assert (fresh.runtime, fresh.executions) == ("python", 0)
    assert (fresh.size_bytes, fresh.file_count) == (0, 0)


def test_list_sessions_of_missing_root_is_empty(tmp_path: Path) -> None:
    assert list_sessions(root=tmp_path / "never-created") == []


def test_default_root_comes_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    open_workspace(sessions_root(), "env-session")

    write_session_file("env-session", "hello.txt", "hi")

    assert (tmp_path / "sessions" / "env-session" / "workspace" / "hello.txt").read_text() == "hi"
    assert read_session_file("env-session", "hello.txt") == b"hi"
    assert list_session_files("env-session") == ["hello.txt"]
    delete_session_file("env-session", "hello.txt")
    assert list_session_files("env-session") == []

    _age(tmp_path / "sessions" / "env-session" / "workspace", days=1)
    assert prune_sessions(0.5).sessions_deleted == 1
    assert list_sessions() == []


# --- pruning ------------------------------------------------------------------------------


def test_prune_deletes_only_sessions_unused_for_longer_than_the_age(root: Path) -> None:
    stale_bare = open_workspace(root, "stale-bare")
    write_session_file("stale-bare", "big.bin", b"x" * 1000, root=root)
    _age(stale_bare, days=10)

    stale_recorded = open_workspace(root, "stale-recorded")
    write_session_file("stale-recorded", "nested/out.txt", "1234567", root=root)
    old = datetime.now(UTC) - timedelta(days=8)
    (stale_recorded.parent / METADATA_FILE).write_text(
        SessionMetadata(
            session_id="stale-recorded",
            runtime="python",
            created_at=old,
            last_used_at=old,
            executions=4,
        ).model_dump_json()
    )
    metadata_size = (stale_recorded.parent / METADATA_FILE).stat().st_size

    open_workspace(root, "fresh-bare")
    write_session_file("fresh-bare", "keep.txt", "keep", root=root)

    # Recent metadata wins over an old workspace mtime.
    fresh_recorded = open_workspace(root, "fresh-recorded")
    record_execution(fresh_recorded.parent, "python")
    _age(fresh_recorded, days=30)

    report = prune_sessions(7, root=root)

    assert report.sessions_deleted == 2
    assert report.bytes_freed == 1000 + 7 + metadata_size
    assert sorted(os.listdir(root)) == ["fresh-bare", "fresh-recorded"]
    assert read_session_file("fresh-bare", "keep.txt", root=root) == b"keep"


def test_prune_with_nothing_old_enough_deletes_nothing(root: Path, workspace: Path) -> None:
    _age(workspace, days=2)
    report = prune_sessions(2.5, root=root)
    assert (report.sessions_deleted, report.bytes_freed) == (0, 0)
    assert os.listdir(root) == ["s1"]


@pytest.mark.parametrize("bad_age", [-1.0, float("nan")])
def test_prune_refuses_a_meaningless_age(root: Path, workspace: Path, bad_age: float) -> None:
    with pytest.raises(ValueError, match="max_age_days must be a number >= 0"):
        prune_sessions(bad_age, root=root)
    assert (root / "s1").is_dir()


# --- metadata -----------------------------------------------------------------------------


def test_record_creation_then_executions_count_up(root: Path) -> None:
    session_directory = open_workspace(root, "s1").parent
    assert load_metadata(session_directory) is None

    record_creation(session_directory, "s1", "python")
    created = load_metadata(session_directory)
    assert created is not None
    assert (created.session_id, created.runtime, created.executions) == ("s1", "python", 0)
    assert created.created_at.utcoffset() == timedelta(0)

    record_execution(session_directory, "python")
    record_execution(session_directory, "python")
    record_creation(session_directory, "s1", "javascript")  # reopening keeps the record

    used = load_metadata(session_directory)
    assert used is not None
    assert (used.runtime, used.executions) == ("python", 2)
    assert used.created_at == created.created_at
    assert used.last_used_at > created.last_used_at
    assert sorted(os.listdir(session_directory)) == [METADATA_FILE, "workspace"]


def test_record_execution_without_prior_record_creates_one(workspace: Path) -> None:
    record_execution(workspace.parent, "javascript")
    metadata = load_metadata(workspace.parent)
    assert metadata is not None
    assert (metadata.session_id, metadata.runtime, metadata.executions) == ("s1", "javascript", 1)


def test_damaged_metadata_is_treated_as_missing_and_rewritten(workspace: Path) -> None:
    (workspace.parent / METADATA_FILE).write_text('{"session_id": "s1", "executions": -')
    assert load_metadata(workspace.parent) is None

    record_execution(workspace.parent, "python")
    metadata = load_metadata(workspace.parent)
    assert metadata is not None
    assert metadata.executions == 1
