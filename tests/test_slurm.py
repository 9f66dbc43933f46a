"""The cluster path, for real: the smoke study through the slurm profile on a single-node
SLURM cluster with slurmdbd (so the plugin's default `sacct` status path is the one tested).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from slurm_cluster import Cluster
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
    cmd = ["timeout", "-s", "INT", "420", str(BIN / SUBMIT[0]), *SUBMIT[1:]]
    result = subprocess.run(
        cmd, cwd=project, env={**env(), **cluster.env}, text=True, capture_output=True, timeout=480
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
            timing = ours["metric"].str.contains("time|seconds")
            assert (~timing).sum() > 100
            ours, local = ours[~timing], local[~timing]
        pd.testing.assert_frame_equal(ours, local, check_exact=True)
