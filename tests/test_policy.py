"""ExecutionPolicy defaults, user files and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import ExecutionPolicy


def test_defaults_come_from_the_packaged_policy_file() -> None:
    policy = ExecutionPolicy()
    assert policy.timeout_seconds == 30.0
    assert policy.guest_mount_path == "/app"
    assert policy.memory_bytes == 256 * 1024 * 1024
    assert policy.env == {}


def test_user_policy_file_overrides_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_file = tmp_path / "policy.toml"
    user_file.write_text("timeout_seconds = 5.0\n[env]\nLANG = 'C'\n")
    monkeypatch.setenv("LLM_WASM_SANDBOX_POLICY", str(user_file))
    policy = ExecutionPolicy(stdout_max_bytes=10)
    assert policy.timeout_seconds == 5.0
    assert policy.env == {"LANG": "C"}
    assert policy.stdout_max_bytes == 10
    assert policy.fuel_budget == 10_000_000_000  # untouched default


def test_from_file_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("memory_bytes = 33554432\n")
    policy = ExecutionPolicy.from_file(path, timeout_seconds=2)
    assert policy.memory_bytes == 32 * 1024 * 1024
    assert policy.timeout_seconds == 2


def test_bad_policy_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        ExecutionPolicy.from_file(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("timeout_seconds = = 1")
    with pytest.raises(ValueError, match="not valid TOML"):
        ExecutionPolicy.from_file(broken)


def test_unknown_fields_and_bad_env_are_rejected() -> None:
    with pytest.raises(ValueError, match="timeout_secs"):
        ExecutionPolicy(timeout_secs=1)
    with pytest.raises(ValueError, match="environment variable name"):
        ExecutionPolicy(env={"BAD-NAME": "x"})
    with pytest.raises(ValueError, match="control characters"):
        ExecutionPolicy(guest_mount_path="/app\nother")


def test_policy_round_trips_as_json() -> None:
    policy = ExecutionPolicy(timeout_seconds=3)
    assert ExecutionPolicy.model_validate_json(policy.model_dump_json()) == policy


def test_typed_defaults_match_the_policy_file() -> None:
    import tomllib

    packaged = tomllib.loads(Path("config/policy.toml").read_text())
    for name, field in ExecutionPolicy.model_fields.items():
        if name in packaged and not isinstance(packaged[name], dict):
            assert field.default == packaged[name], name
