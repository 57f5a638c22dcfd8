"""Hostile batch items: a JSONL line is data, often written by a model, never a capability.

Before the fix an item's ``policy`` could mount any host directory (its code then printed a
host file into the results), and a file name with a NUL byte killed the worker on both
attempts instead of failing the one item.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox import ExecutionPolicy, run_batch


@pytest.mark.parametrize(
    "mounting",
    [
        {"mounts": {"{dir}": "/host"}},
        {"mount_data_dir": "{dir}", "guest_data_path": "/host"},  # 0.4.x's names
        {"additional_readonly_mounts": [["{dir}", "/host"]]},
    ],
    ids=["mounts", "mount_data_dir", "additional_readonly_mounts"],
)
def test_an_item_cannot_mount_host_directories(tmp_path: Path, mounting: dict[str, Any]) -> None:
    (tmp_path / "key").write_text("host secret")
    policy = json.loads(json.dumps(mounting).replace("{dir}", str(tmp_path)))
    items = [
        {"id": "mount", "code": "print(open('/host/key').read())", "policy": policy},
        {"id": "nul", "code": "print(1)", "files": {"a\x00b": "x"}},
        {"id": "fine", "code": "print(2)"},
    ]
    results = {r.id: r for r in run_batch(items, workers=1, policy=ExecutionPolicy())}
    mount, nul, fine = results["mount"], results["nul"], results["fine"]
    assert not mount.success and "host secret" not in mount.stdout
    assert mount.error is not None and "policy cannot set" in mount.error
    assert nul.error is not None and "no NUL" in nul.error and nul.attempts == 0
    assert fine.success and fine.stdout == "2\n" and fine.attempts == 1


def test_the_batch_policy_may_still_mount(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("shared input")
    policy = ExecutionPolicy(mounts={tmp_path: "/data"})
    items = [{"id": "read", "code": "print(open('/data/data.txt').read())"}]
    (result,) = run_batch(items, workers=1, policy=policy)
    assert result.success and result.stdout == "shared input\n"
