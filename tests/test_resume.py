"""Preemption: a training job killed with SIGKILL mid-run resumes from its last checkpoint and
ends with exactly the metrics of an uninterrupted run (CPU, deterministic)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from test_workflow import env, make_project


def train_cmd(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lowrank.cli",
        "train",
        "--depth",
        "6",
        "--factors",
        "2",
        "--out",
        str(out),
    ]


def run_record(out: Path) -> dict:
    records = list(out.glob("runs/*/wd*_seed0/run.json"))
    assert len(records) == 1
    return json.loads(records[0].read_text())


def test_sigkill_mid_training_then_resume_equals_uninterrupted(tmp_path, real_mnist_dir):
    project = make_project(tmp_path / "p", real_mnist_dir)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["scales"]["smoke"]["lorita_fcn"]["epochs"] = 12
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    reference = project / "uninterrupted"
    subprocess.run(
        train_cmd(reference), cwd=project, env=env(), check=True, capture_output=True, timeout=300
    )

    killed = project / "killed"
    proc = subprocess.Popen(
        train_cmd(killed),
        cwd=project,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list(killed.glob("runs/*/*/checkpoint.pt")) and time.monotonic() < deadline:
        assert proc.poll() is None, "training ended before its first checkpoint was seen"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list(killed.glob("runs/*/*/run.json")), "killed before the run finished"
    assert not (killed / "summary.json").exists()
    checkpoint = next(killed.glob("runs/*/*/checkpoint.pt"))
    # the checkpoint on disk is always a complete one (a kill during a save leaves at most an
    # ignored temporary file beside it)
    assert torch.load(checkpoint, weights_only=False)["epoch"] >= 1

    resumed = subprocess.run(
        train_cmd(killed),
        cwd=project,
        env=env(),
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "resumed from" in resumed.stdout
    a, b = run_record(reference), run_record(killed)
    assert a["test_acc"] == b["test_acc"] and a["val_acc"] == b["val_acc"]
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    assert not checkpoint.exists()  # removed once the run finished
