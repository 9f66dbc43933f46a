"""The Tucker study end to end at smoke scale on real MNIST, its report section and its
claims-ledger rules, and resumable learning curves."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from lowrank import cli
from lowrank.config import read_yaml
from lowrank.report import ledger, tucker_rules
from lowrank.report.sections import tucker as section
from lowrank.train import tucker, tucker_pareto, tucker_posthoc, tucker_trained
from lowrank.train.curve import CurveProbe
from lowrank.train.loop import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
METRICS = read_yaml(REPO / "workflow/schemas/metrics.yaml")


@pytest.fixture(scope="module")
def smoke_results(real_mnist_dir, tmp_path_factory) -> tuple[Path, dict]:
    """results/smoke/ with the Tucker study run by the step functions the rules call."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    block = copy.deepcopy(params["scales"]["smoke"])
    results = tmp_path_factory.mktemp("tucker") / "results" / "smoke"
    torch.set_num_threads(2)
    quiet = {"log": lambda s: None}
    with pytest.MonkeyPatch.context() as mp:  # read MNIST once for the three steps
        mp.setattr(tucker, "load_images", functools.lru_cache(tucker.load_images))
        for net in block["tucker"]["networks"]:
            out = results / "tucker" / net
            tucker.train_dense(block, net, str(real_mnist_dir), out, **quiet)
            tucker_posthoc.posthoc(block, net, str(real_mnist_dir), out, **quiet)
            tucker_trained.trained(block, net, str(real_mnist_dir), out, **quiet)
    tucker_pareto.write_pareto(block, results / "tucker", results / "tucker" / "pareto.csv")
    return results, block["tucker"]


def test_smoke_results_are_complete_and_labelled(smoke_results):
    results, cfg = smoke_results
    post = json.loads((results / "tucker/tutorial_cnn/posthoc.json").read_text())
    assert post["dataset_label"].startswith("MNIST (real data)")
    assert post["provenance"]["dataset_checksum"] == post["dataset_checksum"]
    assert {r["rule"] for r in post["records"]} == set(cfg["rank_rules"])
    for rec in post["records"]:
        for layer in rec["layers"]:  # ptflops on the realized modules = the analytic count
            assert layer["tucker"]["macs"] == layer["analytic_macs"]
            assert layer["tucker"]["params"] == layer["analytic_params"]
    pareto = pd.read_csv(results / "tucker/pareto.csv")
    assert list(pareto.columns[:6]) == [
        "method",
        "network",
        "dataset",
        "macs",
        "params",
        "test_acc",
    ]
    assert set(pareto["method"]) == {
        "dense",
        "tucker_posthoc_search",
        "tucker_posthoc_energy",
        "tucker_trained",
    }
    assert (results / "tucker/pareto.csv.provenance.json").is_file()


def test_finished_steps_are_reused(smoke_results, real_mnist_dir):
    results, cfg = smoke_results
    out = results / "tucker/tutorial_cnn"
    logs = []
    block = {"tucker": cfg}
    tucker.train_dense(block, "tutorial_cnn", str(real_mnist_dir), out, log=logs.append)
    assert not any(line.startswith("epoch") for line in logs)  # no training happened


def test_section_reports_measured_rows_and_the_dataset(smoke_results, tmp_path):
    results, cfg = smoke_results
    sec = section.build(results, cfg, "smoke", tmp_path)
    assert sec.anchor == "tucker" and sec.html.startswith('<h2 id="tucker">')
    assert "MNIST (real data), zero-padded to 32x32" in sec.html
    assert sec.datasets[0].label.startswith("MNIST (real data)")
    assert 'class="dataframe sortable"' in sec.html and "data:image/png;base64," in sec.html
    produced = {m for m, spec in METRICS.items() if spec.get("produced") and "tucker" in m}
    assert produced <= set(sec.measured["metric"]) | {"tucker_trained.convergence_speedup"}
    for metric, rows in sec.measured.groupby("metric"):
        assert set(METRICS[metric]["keys"]) <= set(rows.columns), metric
        assert rows[METRICS[metric]["keys"]].notna().all().all(), metric
    assert (tmp_path / "tables/tucker_posthoc_tutorial_cnn.csv").is_file()
    assert (tmp_path / "figures/tucker_accuracy_vs_macs.png").is_file()
    claims = [
        c
        for c in ledger.load_claims(REPO / "claims.yaml", METRICS)
        if c["source"].startswith(("002_", "003_"))
    ]
    table = ledger.ledger(claims, sec.measured, METRICS, "smoke", "", {})
    ran = table[table["verdict"] != ledger.NOT_RUN]
    assert len(ran) >= 6  # only convergence may lack a target at smoke scale
    assert not ran["reason"].str.contains("no rule yet").any()
    params_claim = table[table["id"] == "s003-params-count"].iloc[0]
    assert params_claim["verdict"] == ledger.IDENTITY  # counted = the project's formula


def rows(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_tucker_ledger_rules():
    assert tucker_rules.all_gt_one(rows(value=[1.5, 2.0]))[0]
    assert not tucker_rules.all_gt_one(rows(value=[1.5, 0.9]))[0]
    assert tucker_rules.all_lt_one(rows(value=[0.5]))[0]
    assert tucker_rules.within_threshold(rows(value=[0.5, 1.0], threshold_pts=[1.0, 1.0]))[0]
    assert not tucker_rules.within_threshold(rows(value=[1.2], threshold_pts=[1.0]))[0]
    assert tucker_rules.equals_analytic(rows(value=[0.25], analytic=[0.25]))[0]
    assert not tucker_rules.equals_analytic(rows(value=[0.25], analytic=[0.26]))[0]
    assert tucker_rules.near_analytic(rows(value=[0.02], analytic=[0.04]))[0]
    assert not tucker_rules.near_analytic(rows(value=[0.001], analytic=[0.04]))[0]
    energy = rows(value=[2, 6], full_rank=[6, 6], energy_captured=[0.95, 1.0], energy_target=0.9)
    assert tucker_rules.captures_energy(energy)[0]
    assert not tucker_rules.captures_energy(energy.assign(value=[6, 6]))[0]  # nothing compressed
    layers = rows(model="m", layer=["a", "b", "c"], value=[2, 8, 3], full_rank=[8, 16, 8])
    holds, text = tucker_rules.sensitive_layers_higher(layers.assign(sensitivity=[1.0, 9.0, 5.0]))
    assert holds and "3 concordant vs 0 discordant" in text
    assert not tucker_rules.sensitive_layers_higher(layers.assign(sensitivity=[9.0, 1.0, 5.0]))[0]


def test_curve_survives_a_resume(tmp_path):
    """A run stopped after epoch 1 and resumed has exactly the uninterrupted run's curve."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(96, 6, generator=g), torch.randint(0, 3, (96,), generator=g)

    def run(epochs: int, checkpoint: Path):
        make = lambda: CurveProbe(nn.Linear(6, 3), 2, (x, y))  # noqa: E731
        model, _ = train(make, TrainConfig(epochs, 16, 0.05, 0.0, 0), (x, y), (x, y), checkpoint,
                         log=lambda s: None)  # fmt: skip
        return model

    straight = run(2, tmp_path / "a.pt")
    run(1, tmp_path / "b.pt")
    resumed = run(2, tmp_path / "b.pt")
    assert resumed.steps == straight.steps == 12
    assert [p["iteration"] for p in straight.curve] == [2, 4, 6, 8, 10]
    assert resumed.curve == straight.curve


def test_cli_names_an_unknown_network(capsys):
    code = cli.main(["tucker", "dense", "--scale", "smoke", "--network", "nope", "--out", "x"])
    assert code == 2
    err = capsys.readouterr().err
    assert "tucker.networks" in err and "nope" in err and err.count("\n") == 1
