"""The cluster path, for real: the smoke study through the slurm profile on a single-node
SLURM cluster with slurmdbd (so the plugin's default `sacct` status path is the one tested).
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from slurm_cluster import Cluster
from test_resume import run_record, train_cmd
from test_workflow import BIN, env, make_project

TABLES = ("table1_fcn_accuracy", "fcn_compression_summary", "fcn_flops", "claims_ledger")
# The README's cluster command, at the test's scale.
SUBMIT = ["snakemake", "--profile", "workflow/profiles/slurm", "--config", "scale=smoke"]


@pytest.fixture(scope="module")
def cluster():
    root = Path(tempfile.mkdtemp(prefix="slurm", dir="/tmp"))  # short: munge socket path
    running = Cluster(root).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.slurm
@pytest.mark.e2e
def test_smoke_study_through_slurm_equals_the_local_run(
    cluster, smoke_project, tmp_path, real_mnist_dir
):
    project = make_project(tmp_path / "p", real_mnist_dir)
    cmd = ["timeout", "-s", "INT", "600", str(BIN / SUBMIT[0]), *SUBMIT[1:]]
    result = subprocess.run(
        cmd, cwd=project, env={**env(), **cluster.env}, text=True, capture_output=True, timeout=660
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "has been submitted with SLURM jobid" in output

    jobs = [line.split("|") for line in cluster.sacct().splitlines() if line.strip()]
    rules = [j[3] for j in jobs if j[2] == "COMPLETED"]
    assert sum(r.startswith("rule_train_lorita_fcn") for r in rules) == 2, jobs
    assert sum(r.startswith("rule_sweep_lorita_fcn") for r in rules) == 2, jobs
    assert any(r.startswith("rule_flops_lorita_fcn") for r in rules), jobs
    assert not any(r.startswith("rule_fetch_mnist") for r in rules)  # a local rule
    assert "JobState=COMPLETED" in cluster.path("log/jobcomp.txt").read_text()

    for name in TABLES:
        ours = pd.read_csv(project / f"reports/smoke/tables/{name}.csv")
        local = pd.read_csv(smoke_project / f"reports/smoke/tables/{name}.csv")
        if name == "claims_ledger":  # wall-clock timings differ between any two runs
            timing = ours["wall_clock"]
            assert timing.any() and (~timing).sum() > 100
            ours, local = ours[~timing], local[~timing]
        pd.testing.assert_frame_equal(ours, local, check_exact=True)


def _job_field(cluster, job: str, name: str) -> str:
    out = subprocess.run(
        ["scontrol", "show", "job", job], env=cluster.env, text=True, capture_output=True
    ).stdout
    for token in out.split():
        if token.startswith(name + "="):
            return token.split("=", 1)[1]
    return ""


@pytest.mark.slurm
@pytest.mark.e2e
def test_requeued_training_job_resumes_from_its_checkpoint(cluster, tmp_path, real_mnist_dir):
    """`sbatch --requeue` + `scontrol requeue` (what preemption does): the job starts again,
    resumes from its last checkpoint and ends with the uninterrupted run's metrics."""
    project = make_project(tmp_path / "p", real_mnist_dir)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["scales"]["smoke"]["lorita_fcn"]["epochs"] = 12
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(
        train_cmd(project / "reference"),
        cwd=project,
        env=env(),
        check=True,
        capture_output=True,
        timeout=300,
    )

    out = project / "requeued"
    job = (
        subprocess.run(
            [
                "sbatch",
                "--parsable",
                "--requeue",
                "--open-mode=append",
                "-o",
                str(project / "job.log"),
                "-D",
                str(project),
                "--export=ALL",
                "-c",
                "2",
                "--mem=2000",
                "--wrap",
                shlex.join(train_cmd(out)),
            ],
            cwd=project,
            env={**env(), **cluster.env},
            text=True,
            capture_output=True,
            check=True,
        )
        .stdout.strip()
        .split(";")[0]
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("runs/*/*/checkpoint.pt")):
        assert time.monotonic() < deadline and not list(out.glob("runs/*/*/run.json"))
        time.sleep(0.05)
    subprocess.run(["scontrol", "requeue", job], env=cluster.env, check=True)
    # a requeued job is held ~2 minutes (EligibleTime = requeue + 121 s): release it once
    # it is pending again (it passes through COMPLETING first), 10 s ahead: starting it at
    # once can meet the killed instance's revoked credential ("Job credential revoked")
    deadline, released = time.monotonic() + 240, False
    while (state := _job_field(cluster, job, "JobState")) != "COMPLETED":
        assert time.monotonic() < deadline and state not in ("FAILED", "CANCELLED"), (
            state,
            (project / "job.log").read_text()[-2000:],
        )
        if (
            not released
            and state == "PENDING"
            and _job_field(cluster, job, "Reason") == "BeginTime"
        ):
            released = True
            subprocess.run(
                ["scontrol", "update", f"jobid={job}", "StartTime=now+10"],
                env=cluster.env,
                check=True,
                capture_output=True,
            )
        time.sleep(0.3)
    assert _job_field(cluster, job, "Restarts") == "1"
    assert "resumed from" in (project / "job.log").read_text()
    a, b = run_record(project / "reference"), run_record(out)
    assert a["test_acc"] == b["test_acc"]
    assert [h["val_acc"] for h in a["history"]] == [h["val_acc"] for h in b["history"]]
