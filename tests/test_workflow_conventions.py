"""The workflow follows Snakemake's conventions: one resolved params file per run that every
job reads, paths quoted, stamps that rerun exactly the affected jobs without Snakemake's
metadata, a report of every study. Dry runs only (seconds); the report's zip is checked on the
session's smoke run. `make test` and `make lint` run `snakemake --lint` and `snakefmt --check`."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml
from test_workflow import BIN, REPO, make_project, run

from lowrank.config import params_hash
from lowrank.errors import UserError
from lowrank.workflow_helpers import (
    FIGURES,
    REPORT_ONLY_KEYS,
    STUDY_STEPS,
    STUDY_TITLES,
    check_fresh,
    run_steps,
    step_hash,
    step_settings,
)


def snakemake(project: Path, *args: str) -> str:
    result = run([str(BIN / "snakemake"), "-c1", *args], project, timeout=300)
    return result.stdout + result.stderr


def shell_commands(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if " -m lowrank.cli " in ln]


def test_overrides_reach_every_job_through_the_resolved_params(tmp_path):
    """--configfile and --config merge into results/<scale>/params.resolved.yaml; every job
    reads it with --params, and a results_dir or data_dir with a space is quoted."""
    project = make_project(tmp_path / "p", tmp_path / "data")
    data = tmp_path / "other data"
    extra = project / "extra.yaml"
    extra.write_text(yaml.safe_dump({"scales": {"smoke": {"lorita_fcn": {"width": 48}}}}))
    out = snakemake(
        project,
        "-n",
        "-p",
        "--configfile",
        str(extra),
        "--config",
        "scale=smoke",
        "threads=1",
        f"data_dir={data}",
        "results_dir=my results",
        "device=cpu",
    )
    latest = project / "my results/smoke/params.resolved.yaml"
    resolved = yaml.safe_load(latest.read_text())
    assert resolved["threads"] == 1 and resolved["data_dir"] == str(data)
    assert resolved["device"] == "cpu" and resolved["scale"] == "smoke"
    assert resolved["scales"]["smoke"]["lorita_fcn"]["width"] == 48
    assert resolved["scales"]["smoke"]["lorita_fcn"]["depths"]  # the rest from params.yaml
    frozen = Path("my results/smoke/params.resolved") / f"{params_hash(resolved)}.yaml"
    assert (project / frozen).read_text() == latest.read_text()
    commands = shell_commands(out)
    assert len(commands) >= 25, out[-2000:]
    for command in commands:
        argv = shlex.split(command.split(" -m lowrank.cli ", 1)[1])
        assert argv[argv.index("--params") + 1] == str(frozen), command
        for flag in ("--out", "--train-dir"):
            if flag in argv and argv[0] != "report":  # one argument, under results_dir
                assert argv[argv.index(flag) + 1].startswith("my results/smoke/"), command
        if argv[0] == "report":  # it checks every result it reads, each one argument
            inputs = argv[argv.index("--inputs") + 1 : argv.index(">")]
            assert inputs and all(i.startswith("my results/smoke/") for i in inputs)
        log = argv[argv.index(">") + 1]
        assert log.startswith("logs/smoke/"), command
    assert f"{data}/mnist/MANIFEST.json" in out  # the data rule follows data_dir too


@pytest.mark.e2e
def test_overridden_data_dir_threads_and_study_value_reach_the_jobs(tmp_path, real_mnist_dir):
    """Two real jobs (a verify-only fetch and the FLOPs count, seconds): each used the
    command line's data_dir (with a space), threads and width, not params.yaml's."""
    project = make_project(tmp_path / "p", tmp_path / "unused")
    data = tmp_path / "other data"
    shutil.copytree(real_mnist_dir / "mnist", data / "mnist")
    (data / "mnist/MANIFEST.json").unlink(missing_ok=True)
    extra = project / "extra.yaml"
    extra.write_text(yaml.safe_dump({"scales": {"smoke": {"lorita_fcn": {"width": 48}}}}))
    flops = "my results/smoke/lorita_fcn/flops.csv"
    snakemake(
        project,
        f"{data}/mnist/MANIFEST.json",
        flops,
        "--configfile",
        str(extra),
        "--config",
        "scale=smoke",
        f"data_dir={data}",
        "results_dir=my results",
        "threads=1",
    )
    assert json.loads((data / "mnist/MANIFEST.json").read_text())["checksum"]
    table = (project / flops).read_text().splitlines()
    assert table[0].split(",")[2] == "width" and {r.split(",")[2] for r in table[1:]} == {"48"}
    record = json.loads((project / f"{flops}.provenance.json").read_text())
    assert "1 torch threads" in record["device"] and record["step"] == "lorita_fcn.flops"
    frozen = project / "my results/smoke/params.resolved" / f"{record['run_params_hash']}.yaml"
    assert yaml.safe_load(frozen.read_text())["threads"] == 1


def _fake_outputs(project: Path) -> None:
    """Every output of the smoke plan as a placeholder, dated in DAG order (no real run)."""
    summary = snakemake(project, "--summary", "--config", "scale=smoke")
    for line in summary.splitlines()[1:]:
        name = line.split("\t")[0]
        if not name or "\t" not in line:
            continue
        path = project / name
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
        else:
            path.mkdir(parents=True, exist_ok=True)
    snakemake(project, "--touch", "--config", "scale=smoke")


def _planned(out: str) -> dict[str, int]:
    stats = out[out.index("Job stats:") :].split("\n\n")[0]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", stats, re.M) if k != "total"}


def test_a_changed_value_without_metadata_reruns_exactly_the_affected_jobs(tmp_path):
    project = make_project(tmp_path / "p", tmp_path / "data")
    _fake_outputs(project)
    assert any((project / ".snakemake/metadata").iterdir())
    # with Snakemake's metadata: an override no step depends on changes the resolved file's
    # name in every job's params, and reruns nothing
    out = snakemake(project, "-n", "--config", "scale=smoke", "threads=1")
    assert "Nothing to be done" in out, out[-2000:]
    shutil.rmtree(project / ".snakemake")  # e.g. copied results: no Snakemake metadata
    assert "Nothing to be done" in snakemake(project, "-n", "--config", "scale=smoke")
    # a sweep value and a Toeplitz training value: exactly the FCN sweeps, both Toeplitz
    # jobs and what follows them rerun, no FCN training, nothing of the other studies
    epochs = yaml.safe_load((project / "params.yaml").read_text())["scales"]["smoke"]
    epochs = epochs["toeplitz"]["epochs"] + 1
    smoke = {"lorita_fcn": {"retained_fractions": [0.5, 1.0]}, "toeplitz": {"epochs": epochs}}
    change = project / "change.yaml"
    change.write_text(yaml.safe_dump({"scales": {"smoke": smoke}}))
    planned = _planned(
        snakemake(project, "-n", "--configfile", str(change), "--config", "scale=smoke")
    )
    assert planned == {
        "sweep_lorita_fcn": 2,
        "toeplitz_train": 1,
        "toeplitz_sweep_bench": 1,
        "report": 1,
        "publish_report": 1,
        "all": 1,
    }


def test_report_refuses_results_made_with_other_settings(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    block = params["scales"]["smoke"]
    old = {**block, "lorita_fcn": {**block["lorita_fcn"], "width": 17}}
    summary = tmp_path / "fcn6_N1" / "summary.json"
    summary.parent.mkdir()
    record = {
        "step": "lorita_fcn.train",
        "step_hash": step_hash("lorita_fcn", "train", old, params),
    }
    summary.write_text(json.dumps({"provenance": record}))
    sweep = tmp_path / "fcn6_N1" / "sweep.csv"
    sweep.write_text("a\n1\n")
    now = step_hash("lorita_fcn", "sweep", block, params)
    (tmp_path / "fcn6_N1/sweep.csv.provenance.json").write_text(
        json.dumps({"step": "lorita_fcn.sweep", "step_hash": now})
    )
    assert check_fresh([sweep], params, block) == 1
    # a report-only key changed: training results stay valid
    later = {**block, "lorita_fcn": {**block["lorita_fcn"], "drop_tolerance": 0.5}}
    assert check_fresh([sweep], params, later) == 1
    with pytest.raises(UserError) as err:
        check_fresh([sweep, summary], params, block)
    assert str(summary) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.e2e
def test_snakemake_report_has_every_study_and_jobs_read_the_resolved_params(smoke_project):
    project = smoke_project
    summary = json.loads((project / "results/smoke/lorita_fcn/fcn6_N1/summary.json").read_text())
    digest = summary["provenance"]["run_params_hash"]  # the job read the run's resolved file
    frozen = project / "results/smoke/params.resolved" / f"{digest}.yaml"
    assert params_hash(yaml.safe_load(frozen.read_text())) == digest
    assert summary["provenance"]["step"] == "lorita_fcn.train"
    out = project / "studies-report.zip"
    run([str(BIN / "snakemake"), "--report", str(out)], project)
    archive = zipfile.ZipFile(out)
    names = [Path(n).name for n in archive.namelist()]
    html = archive.read(next(n for n in archive.namelist() if n.endswith("report.html")))
    block = yaml.safe_load((project / "params.yaml").read_text())["scales"]["smoke"]
    for study, figures in FIGURES.items():
        if study in block:  # every figure of the study, in the study's own category
            assert {f"{f}.png" for f in figures} <= set(names), study
            assert STUDY_TITLES[study] in html.decode(), study
    assert "claims_ledger.csv" in names


def test_every_setting_of_every_study_is_a_rerun_trigger_of_some_step():
    """A key in no step's settings would change results without rerunning anything."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for scale, block in params["scales"].items():
        for study in STUDY_STEPS:
            if study not in block:
                continue
            covered = set(REPORT_ONLY_KEYS.get(study, ()))
            for step in STUDY_STEPS[study]:
                settings = step_settings(study, step, block, params)
                parts = settings if isinstance(settings, list) else [settings]
                covered |= {k for part in parts if isinstance(part, dict) for k in part}
            assert set(block[study]) <= covered, (scale, study, set(block[study]) - covered)
        assert f"{next(iter(STUDY_STEPS))}.train" in run_steps(block)
