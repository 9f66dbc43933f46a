"""DVC's stamp files (src/lowrank/stamps.py) and dvc.yaml's rule: no data or results as outs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from lowrank import stamps

REPO = Path(__file__).resolve().parents[1]


def stage_outs(stage: dict) -> list[str]:
    return [
        next(iter(o)) if isinstance(o, dict) else o
        for key in ("outs", "metrics", "plots")
        for o in stage.get(key, [])
    ]


def test_dvc_outputs_are_stamps_or_the_report_never_data_or_results():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for out in stage_outs(stage):
            assert out.startswith("stamps/") or out == "reports/${scale}/report.html", (name, out)
        deps = stage.get("deps", [])
        for dep in ("src/lowrank/cli.py", "src/lowrank/config.py", "src/lowrank/stamps.py"):
            assert dep in deps, (name, dep)
        assert "workflow/schemas/params.schema.yaml" in deps, name
        assert not any(d.startswith(("${data_dir}", "${results_dir}")) for d in deps), name
    assert stages["study"]["deps"][0] == "stamps/data.json"  # DVC orders data before study
    assert stages["report"]["deps"][0] == "stamps/study.json"
    # every stamp a stage depends on is committed, so `dvc repro --dry` works on a fresh clone
    for dep in ("stamps/data.json", "stamps/study.json"):
        assert (REPO / dep).is_file(), dep


def test_data_stamp_keeps_only_what_identifies_the_data(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    manifest = {
        "dataset": "MNIST",
        "format": "pkl",
        "files": {"mnist.pkl.gz": {"sha256": "ab"}},
        "checksum": "sha256:ab (mnist.pkl.gz)",
        "source": "pre-populated data_dir",
        "failed_sources": ["x: unreachable"],
        "fetched_at": "2026-12-03T11:43:51Z",
    }
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    stamp = stamps.data_stamp(tmp_path)
    assert stamp == {k: manifest[k] for k in ("dataset", "format", "files", "checksum")}


def test_study_stamp_lists_results_but_not_what_the_report_writes(tmp_path):
    results = tmp_path / "results/smoke"
    (results / "lorita_fcn/fcn6_N1").mkdir(parents=True)
    (results / "lorita_fcn/fcn6_N1/summary.json").write_text("{}")
    (results / "plots").mkdir()
    (results / "plots/truncation.csv").write_text("a\n")
    (results / "metrics.json").write_text("{}")
    (results / "lorita_fcn/.hidden.tmp").write_text("")
    stamp = stamps.study_stamp(results, "smoke")
    assert list(stamp["files"]) == ["lorita_fcn/fcn6_N1/summary.json"]
    assert stamp == stamps.study_stamp(results, "smoke")  # deterministic: no times


def test_headline_metrics_one_mean_per_study_and_ledger_counts(tmp_path):
    measured = pd.DataFrame(
        {
            "metric": ["lorita_fcn.test_acc", "lorita_fcn.test_acc", "rankconv.test_acc", "x.y"],
            "value": [0.9, 0.8, 0.5, 1.0],
        }
    )
    measured.to_csv(tmp_path / "measured.csv", index=False)
    pd.DataFrame({"verdict": ["reproduced", "not reproduced", "not run at this scale"]}).to_csv(
        tmp_path / "ledger.csv", index=False
    )
    metrics = stamps.headline_metrics(tmp_path / "measured.csv", tmp_path / "ledger.csv")
    assert metrics == {
        "lorita_fcn": {"test_acc": 0.85},
        "rankconv": {"test_acc": 0.5},
        "claims": {"reproduced": 1, "not_reproduced": 1},
    }


def test_accuracy_plot_has_one_row_per_study_as_a_fraction():
    metrics = {
        "lorita_fcn": {"test_acc": 0.85, "min_retained_pct": 40.0},
        "structured": {"acc_after": 91.5},
        "claims": {"reproduced": 1},
    }
    assert stamps.accuracy_plot(metrics) == [
        {"study": "lorita_fcn", "metric": "lorita_fcn.test_acc", "accuracy": 0.85},
        {"study": "structured", "metric": "structured.acc_after", "accuracy": 0.915},
    ]
