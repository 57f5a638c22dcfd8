"""`llm-wasm-sandbox batch` and `eval humaneval`, run as real subprocesses."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "sandbox"]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_interrupted_batch_resumes_without_losing_or_repeating(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    total = 30
    with items.open("w") as out:
        for i in range(total):
            out.write(
                json.dumps({"id": f"i{i}", "code": f"import time; time.sleep(0.2); print({i})"})
                + "\n"
            )
        out.write("{not json\n")
    output = tmp_path / "results.jsonl"
    command = [*CLI, "batch", str(items), "-o", str(output), "--workers", "2"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(_lines(output)) < 4 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    workers = _children(run.pid)
    run.send_signal(signal.SIGKILL)
    run.wait()
    done_before = len(_lines(output))
    assert 4 <= done_before < total, "the run was not interrupted mid-way"
    deadline = time.monotonic() + 60  # orphaned workers leave when their pipe closes
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)

    refused = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "--resume" in refused.stderr

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    records = [json.loads(line) for line in _lines(output)]
    ids = [record["id"] for record in records]
    assert sorted(ids) == sorted([f"i{i}" for i in range(total)] + [f"line-{total + 1}"])
    assert all(r["success"] for r in records if r["id"] != f"line-{total + 1}")
    bad = next(r for r in records if r["id"] == f"line-{total + 1}")
    assert "is not JSON" in bad["error"]


PROBLEMS = [
    {
        "task_id": "T/0",
        "prompt": "def add(a, b):\n",
        "entry_point": "add",
        "canonical_solution": "    return a + b\n",
        "test": "def check(f):\n    assert f(2, 3) == 5\n    assert f(-1, 1) == 0\n",
    },
    {
        "task_id": "T/1",
        "prompt": "def rev(s):\n",
        "entry_point": "rev",
        "canonical_solution": "    return s[::-1]\n",
        "test": "def check(f):\n    assert f('abc') == 'cba'\n",
    },
    {
        "task_id": "T/2",
        "prompt": "def first(xs):\n",
        "entry_point": "first",
        "canonical_solution": "    return xs[0]\n",
        "test": "def check(f):\n    assert f([4, 5]) == 4\n",
    },
]
COMPLETIONS = [
    ("T/0", "    return a + b\n"),
    ("T/0", "    return a - b\n"),  # wrong
    ("T/0", "    return b + a\n"),
    ("T/1", "    return s[::-1]\n"),
    ("T/1", "    return ''.join(reversed(s))\n"),
    ("T/1", "    return s[::-1]\n"),
    ("T/2", "    while True: pass\n"),  # runs into the deadline
    ("T/2", "    import os; os._exit(0)\n"),  # exits 0 before check() ran: still a crash
    ("T/2", "    return xs[0]\n"),
]


def test_eval_humaneval_reports_pass_at_k(tmp_path: Path) -> None:
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    completions = tmp_path / "completions.jsonl"
    completions.write_text(
        "".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in COMPLETIONS)
    )
    samples = tmp_path / "samples.jsonl"
    done = subprocess.run(
        [
            *CLI,
            "eval",
            "humaneval",
            str(problems),
            str(completions),
            "-k",
            "1,2,10",
            "--timeout",
            "1",
            "-o",
            str(samples),
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # pass@1 = mean(c/n); pass@2 = mean(1 - C(n-c,2)/C(n,2)); pass@10 needs 10 samples a task.
    assert report["pass@1"] == pytest.approx((2 / 3 + 1 + 1 / 3) / 3)
    assert report["pass@2"] == pytest.approx((1 + 1 + (1 - 1 / 3)) / 3)
    assert "pass@10" not in report
    assert report["tasks"]["T/0"] == {"samples": 3, "passed": 2}
    assert report["tasks"]["T/2"] == {"samples": 3, "passed": 1}
    by_id = {r["id"]: r for r in map(json.loads, _lines(samples))}
    assert by_id["T/2#0"]["trap_reason"] in {"timeout", "fuel_exhausted"}


def test_eval_humaneval_explains_bad_input(tmp_path: Path) -> None:
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps(PROBLEMS[0]) + "\n")
    completions = tmp_path / "completions.jsonl"
    completions.write_text(json.dumps({"task_id": "T/9", "completion": "x"}) + "\n")
    done = subprocess.run(
        [*CLI, "eval", "humaneval", str(problems), str(completions)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "unknown task_id 'T/9'" in done.stderr
