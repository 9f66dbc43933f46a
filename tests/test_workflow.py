"""End-to-end: the Snakefile and `dvc repro` at smoke scale on real MNIST, in a temp copy."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROJECT_FILES = (
    "Snakefile",
    "workflow",
    "src",
    "envs",
    "params.yaml",
    "dvc.yaml",
    "profiles",
    "claims.yaml",
    "stamps",
    ".gitignore",
)


def env() -> dict:
    return {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "PYTHONPATH": "src",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def make_project(dest: Path, data_dir: Path, scale: str = "smoke", copy_data=False) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = REPO / name
        if src.is_symlink():
            os.symlink(os.readlink(src), dest / name)
        elif src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / name)
    if copy_data:
        shutil.copytree(data_dir / "mnist", dest / "data/mnist")
    # edited as text, so params.yaml keeps the comments that document every value
    set_params(dest, scale=scale, data_dir="data" if copy_data else str(data_dir))
    return dest


def set_params(project: Path, **values: str) -> None:
    """Set top-level values of a project's params.yaml in place, keeping its comments."""
    path = project / "params.yaml"
    text = path.read_text()
    for key, value in values.items():
        text, n = re.subn(rf"^{key}: *\S+", f"{key}: {value}", text, count=1, flags=re.M)
        assert n == 1, key
    path.write_text(text)
    assert {k: str(v) for k, v in yaml.safe_load(text).items() if k in values} == values


def run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(
        cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.mark.e2e
def test_smoke_study_end_to_end(smoke_project):
    project = smoke_project
    html = (project / "reports/report.html").read_text()
    assert html == (project / "reports/smoke/report.html").read_text()
    assert "MNIST" in html and "smoke" in html
    assert "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416" in html
    figures = list((project / "reports/smoke/figures").glob("*.png"))
    assert len(figures) >= 3  # FCN truncation and spectra, plus every other study's figures
    assert html.count("data:image/png;base64,") == len(figures)  # embedded: self-contained
    assert not re.search(r'src="(?!data:)', html)
    table1 = pd.read_csv(project / "reports/smoke/tables/table1_fcn_accuracy.csv")
    assert len(table1) == 2 and table1["test_acc_mean"].between(0.1, 1).all()
    assert set(table1["paper"]) == {0.983, 0.982}
    flops = pd.read_csv(project / "reports/smoke/tables/fcn_flops.csv")
    assert flops["agree"].all()
    sweep = pd.read_csv(project / "results/smoke/lorita_fcn/fcn6_N2/sweep.csv")
    full = sweep[sweep["target_fraction"] == 1.0]
    assert (full["acc_drop"].abs() < 1e-9).all()  # 100% truncation reproduces the model
    metrics = json.loads((project / "results/smoke/metrics.json").read_text())
    assert "N1_test_acc" in metrics["FCN-6"]
    summary = json.loads((project / "results/smoke/lorita_fcn/fcn6_N1/summary.json").read_text())
    assert summary["provenance"]["dataset_checksum"].startswith("sha256:f11bb9e4")
    for sidecar in ("fcn6_N2/sweep.csv.provenance.json", "flops.csv.provenance.json"):
        record = json.loads((project / "results/smoke/lorita_fcn" / sidecar).read_text())
        assert {"git_commit", "params_hash", "versions", "device", "wall_seconds"} <= set(record)
    ledger = pd.read_csv(project / "reports/smoke/tables/claims_ledger.csv")
    fcn_acc = ledger[ledger["id"].str.startswith("s004-t1-fcn6-n")]
    assert len(fcn_acc) == 3 and (fcn_acc["verdict"] != "not run at this scale").sum() == 2
    # smoke FCNs are narrow and under-trained: their accuracies are never judged
    ran = fcn_acc[fcn_acc["verdict"] != "not run at this scale"]
    assert (ran["verdict"] == "not comparable").all() and ran["reason"].str.contains(
        "under-trained"
    ).all()
    # over the whole ledger: a real verdict only where dataset, model and budget match
    real = ledger["verdict"].isin(
        ["reproduced", "reproduced with a better result", "not reproduced"]
    )
    assert ledger.loc[real, "comparable"].all()
    assert not (
        real & (ledger["run_dataset"].fillna("") != ledger["claim_dataset"].fillna(""))
    ).any()
    timed = ledger["measure"] == "absolute_time"
    assert not (timed & real).any()
    # the summary at the top counts what the CSV holds
    summary = html[html.index('id="summary"') : html.index('id="deviations"')]
    not_run = int((ledger["verdict"] == "not run at this scale").sum())
    assert f"Not run at this scale: {not_run}" in summary
    assert html.index('id="summary"') < html.index('id="deviations"') < html.index('id="ledger"')
    assert ledger["id"].iloc[0] in html and html.index('id="ledger"') < html.index("Table 1:")
    assert html.index('id="summary"') < html.index('id="ledger"')
    again = run([str(BIN / "snakemake"), "--cores", "2"], project)
    assert "Nothing to be done" in again.stdout + again.stderr
    run([str(BIN / "snakemake"), "--report", "report.zip"], project)
    assert (project / "report.zip").stat().st_size > 10_000


def test_dry_run_plans_every_scale_quickly_with_few_jobs(tmp_path, real_mnist_dir):
    project = make_project(tmp_path / "p", real_mnist_dir)
    for scale, jobs in (("smoke", 31), ("quick", 65), ("paper", 184)):
        start = time.perf_counter()
        out = run([str(BIN / "snakemake"), "-n", "--config", f"scale={scale}"], project).stdout
        elapsed = time.perf_counter() - start
        assert re.search(rf"^total\s+{jobs}$", out, re.M), out[-1500:]
        assert elapsed < 10, f"dry run of {scale} took {elapsed:.1f}s"
    # every run of LoRITa Tables 1-4 and of the other sources is in the paper plan
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    expected = {
        "train_lorita_fcn": 9,  # Table 1: FCN-6/8/10 x N=1,2,3
        "train_lorita_cnn": 12,  # Table 2: VGG13/ResNet18 x CIFAR-10/100 x N=1,2,3
        "train_lorita_vit": 18,  # Tables 1-2 ViT rows x N=1,2,3
        "train_structured": 6,  # Tables 3-4: ResNet20/VGG16 x N=1,2,3
        "train_rankconv": 72,  # seed 000: K=3,5,7 x (K+1) ranks x 4 variants
        "toeplitz_train": 1,  # seed 001
        "tucker_posthoc": 3,  # seeds 002/003: tutorial CNN, ResNet20, VGG16
        "tucker_trained": 3,
    }
    assert {k: int(counts.get(k, 0)) for k in expected} == expected
    # on a GPU cluster (device: cuda) every training job asks for one GPU, and nothing else
    # does; a cluster submission (here --executor slurm) may ask for cuda without a local GPU
    submit = [str(BIN / "snakemake"), "-n", "--executor", "slurm", "--jobs", "1"]
    out = run([*submit, "--config", "scale=paper", "device=cuda"], project).stdout
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:.*\n)*?\s+resources: (.*)$", out, re.M)
    gpu_rules = {rule for rule, res in jobs if "gpu=1" in res}
    trainers = {rule for rule, _ in jobs if rule.startswith("train_")}
    assert trainers | {"tucker_dense", "tucker_posthoc", "tucker_trained"} == gpu_rules, gpu_rules


@pytest.mark.e2e
def test_dvc_on_fresh_clone_keeps_data_and_results(tmp_path, real_mnist_dir, smoke_project):
    """Issue 18's sequence: a fresh clone, MNIST copied into data/, a smoke run, then `dvc exp
    run -S scale=smoke`: no data file or result is deleted, downloaded again or retrained.

    The smoke run is the smoke_project fixture's, copied in (mtimes kept) as if Snakemake had
    run in the clone; tests/test_slurm.py checks that an independent run gives the same tables.
    """
    dvc = str(BIN / "dvc")
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost"]
    origin = make_project(tmp_path / "origin", real_mnist_dir, scale="quick", copy_data=True)
    shutil.rmtree(origin / "data")
    # no network: every MNIST source is unreachable, so a download would fail the data stage
    params = origin / "params.yaml"
    params.write_text(
        re.sub(
            r"^(\s+url:) \S+$", r"\1 http://127.0.0.1:9/unreachable", params.read_text(), flags=re.M
        )
    )
    run(["git", "init", "-q"], origin)
    run([dvc, "init", "-q"], origin)
    run([*git, "add", "-A"], origin)
    run([*git, "commit", "-q", "-m", "the project as committed"], origin)
    project = tmp_path / "clone"
    run(["git", "clone", "-q", str(origin), str(project)], tmp_path)

    # `dvc repro --dry` plans on the fresh clone (the committed stamps exist, results don't)
    dry = run([dvc, "repro", "--dry"], project).stdout
    assert "Running stage 'report'" in dry and "results/quick" not in dry
    # `dvc params diff` against the last commit names exactly the edited value
    committed = (project / "params.yaml").read_text()
    set_params(project, device="cpu")
    diff = run([dvc, "params", "diff", "--md"], project).stdout
    rows = [line for line in diff.splitlines() if line.startswith("| params.yaml")]
    assert len(rows) == 1 and re.search(r"\| device +\| auto +\| cpu ", rows[0]), diff
    (project / "params.yaml").write_text(committed)

    # the user's data and smoke run
    shutil.copytree(real_mnist_dir / "mnist", project / "data/mnist")
    shutil.copytree(smoke_project / "results/smoke", project / "results/smoke")
    # the report's outputs, and the run's resolved settings record, which the Snakefile
    # rewrites (atomically, content only) when `-S` re-serializes params.yaml
    report_written = {
        project / "results/smoke/metrics.json",
        project / "results/smoke/params.resolved.yaml",
    }
    before = {
        p: (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in [*(project / "data").rglob("*"), *(project / "results").rglob("*")]
        if p.is_file() and p not in report_written and "plots" not in p.parts
    }
    exp = run([dvc, "exp", "run", "-S", "scale=smoke"], project, timeout=900)
    out = exp.stdout + exp.stderr
    assert "MNIST ready in data/mnist" in out  # verified (every source is unreachable)
    assert "Nothing to be done" in out, out[-3000:]  # Snakemake found every job done
    after = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in before if p.exists()}
    assert after == before  # same inodes, untouched: nothing deleted, rewritten or retrained
    # -S rewrites params.yaml in DVC's YAML style (README, DVC): every value is kept
    assert yaml.safe_load((project / "params.yaml").read_text()) == {
        **yaml.safe_load(committed),
        "scale": "smoke",
    }
    assert (project / "reports/smoke/report.html").is_file()
    study = json.loads((project / "stamps/study.json").read_text())
    assert study["scale"] == "smoke" and "lorita_fcn/fcn6_N1/summary.json" in study["files"]
    metrics = run([dvc, "metrics", "show"], project).stdout
    assert "lorita_fcn.test_acc" in metrics and "rankconv.test_acc" in metrics, metrics
    plots = run([dvc, "plots", "show", "-o", str(tmp_path / "plots")], project)
    page = (tmp_path / "plots/index.html").read_text()
    assert "stamps/accuracy.csv" in page and "stamps/truncation.csv" in page, plots.stdout
    status = run([dvc, "status"], project).stdout
    assert "up to date" in status.lower(), status
    run([*git, "add", "-A"], project)
    run([*git, "commit", "-q", "-m", "smoke baseline: dvc.lock and stamps"], project)

    # the report travels through a DVC remote
    remote = tmp_path / "remote"
    run([dvc, "remote", "add", "-d", "local", str(remote)], project)
    run([dvc, "push"], project)
    report = (project / "reports/smoke/report.html").read_bytes()
    (project / "reports/smoke/report.html").unlink()
    shutil.rmtree(project / ".dvc/cache")
    run([dvc, "pull"], project)
    assert (project / "reports/smoke/report.html").read_bytes() == report

    # dvc repro and snakemake produce the same tables from the same results
    for name in ("table1_fcn_accuracy", "fcn_compression_summary", "fcn_flops"):
        pd.testing.assert_frame_equal(
            pd.read_csv(project / f"reports/smoke/tables/{name}.csv"),
            pd.read_csv(smoke_project / f"reports/smoke/tables/{name}.csv"),
            check_exact=True,
        )

    # a change to report code reruns the report only
    template = project / "src/lowrank/report/templates/report.html.j2"
    template.write_text(template.read_text() + "{# a report-only change #}\n")
    again = run([dvc, "repro"], project).stdout
    assert "Stage 'study' didn't change" in again and "Running stage 'report'" in again
    run([*git, "commit", "-q", "-am", "report change"], project)

    # an experiment changes one report param; `dvc exp show --only-changed` compares it
    exp = run(
        [dvc, "exp", "run", "-S", "scales.smoke.lorita_fcn.drop_tolerance=0.02"], project
    ).stdout
    assert "Running stage 'report'" in exp and "Running stage 'study'" not in exp
    shown = run([dvc, "exp", "show", "--no-pager", "--only-changed", "--csv"], project).stdout
    assert "0.02" in shown, shown
