"""The rankconv report section: measured rows, every slides claim's verdict, real job output."""

from pathlib import Path

import pandas as pd
import pytest

from lowrank.atomic import write_json
from lowrank.config import load_params, read_yaml, scale_block
from lowrank.report import ledger
from lowrank.report.comparability import RunProtocol
from lowrank.report.sections import rankconv as section
from lowrank.train import rankconv as job

REPO = Path(__file__).resolve().parents[1]
METRICS = read_yaml(REPO / "workflow/schemas/metrics.yaml")
CLAIMS = {c["id"]: c for c in ledger.load_claims(REPO / "claims.yaml", METRICS)}
LABEL = "MNIST (real data)"

# kernel, rank: final test acc, train acc, iteration reaching 0.9, acc at iteration 100,
# train seconds, conv parameters. Built so that every slides claim holds.
DESIGN = {
    (3, "1"): (0.92, 0.93, 200, 0.80, 10.0, 6),
    (3, "dense"): (0.95, 0.98, 100, 0.90, 9.0, 9),
    (7, "1"): (0.94, 0.95, 200, 0.84, 12.0, 14),
    (7, "6"): (0.965, 0.975, 150, 0.88, 14.0, 84),
    (7, "dense"): (0.96, 0.99, 200, 0.85, 13.0, 49),
}
CFG = {
    "grid": [{"kernel": 3, "ranks": [1, "dense"]}, {"kernel": 7, "ranks": [1, 6, "dense"]}],
    "variants": ["plain"],
    "seeds": 3,
    "iterations": 500,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 1e-3,
    "channels": [[4], [8]],
    "hidden": 32,
    "dropout": 0.25,
    "eval_every": 50,
    "eval_images": 1000,
    "train_eval_images": 5000,
    "test_images": None,
    "target_acc": 0.9,
    "early_iteration": 100,
}


def _history(final, reach, early):
    def acc(it):
        if it < 100:
            return 0.5
        if it == 100:
            return early
        return final if it >= reach else 0.85

    return [
        {"iteration": it, "test_acc": acc(it), "train_loss": 1 / it, "train_acc": acc(it)}
        for it in range(50, 501, 50)
    ]


def write_results(results: Path, design=DESIGN) -> None:
    for (kernel, rank), (acc, train, reach, early, secs, params) in design.items():
        runs = [
            {
                "seed": seed,
                "test_acc": acc + 0.001 * seed,
                "train_acc": train + 0.001 * seed,
                "test_loss": 0.2,
                "train_loss": 0.1,
                "history": _history(acc, reach, early),
                "train_seconds": secs + 0.1 * seed,
                "test_seconds": 0.5,
                "strategy": "sequential",
            }
            for seed in range(3)
        ]
        name = job.config_name(kernel, job.parse_rank(rank), "plain")
        write_json(
            results / "rankconv" / name / "summary.json",
            {
                "kernel": kernel,
                "rank": rank,
                "variant": "plain",
                "dataset_label": LABEL,
                "dataset_checksum": "sha256:abc",
                "settings": {"iterations": 500},
                "conv_parameters": params,
                "strategy": {"strategy": "sequential", "how": "fixed in params", "device": "cpu"},
                "provenance": {"device": "cpu (test)"},
                "runs": runs,
            },
        )


# A run on the slides' data and budget, so that the ordering rules themselves are judged.
SAME_PROTOCOL = {"rankconv": RunProtocol({"cifar10": "cifar10"}, True, iterations=10_000)}


def verdicts(measured: pd.DataFrame) -> dict[str, str]:
    return {
        cid: ledger.evaluate(c, measured, METRICS, "quick", "", {}, SAME_PROTOCOL).verdict
        for cid, c in CLAIMS.items()
        if cid.startswith("s000-")
    }


def test_section_rows_tables_and_every_claim_verdict(tmp_path):
    write_results(tmp_path / "results")
    sec = section.build(tmp_path / "results", CFG, "quick", tmp_path / "out")
    m = sec.measured
    assert set(m["metric"]) <= set(METRICS)
    gap = m[(m["metric"] == "rankconv.acc_gap_to_dense") & (m["kernel"] == 7) & (m["rank"] == "1")]
    assert gap["value"].tolist() == pytest.approx([2.0, 2.0, 2.0])  # points, paired by seed
    early = m[(m["metric"] == "rankconv.early_acc_gap_to_dense") & (m["kernel"] == 3)]
    assert early["value"].tolist() == pytest.approx([10.0] * 3)
    iters = m[(m["metric"] == "rankconv.iters_to_target") & (m["rank"] == "6")]
    assert iters["value"].tolist() == [150.0] * 3
    ratio = m[(m["metric"] == "rankconv.conv_param_ratio") & (m["kernel"] == 7)]
    assert sorted(ratio["value"]) == pytest.approx([14 / 49, 84 / 49])
    expected = {cid: ledger.REPRODUCED for cid in verdicts(m)}
    expected["s000-params-quadratic-to-linear"] = ledger.IDENTITY  # 2NK/K^2 by construction
    for lost in ("train-rank1-vs-dense", "rank1-gap-2pts", "rank1-gap-2pts-large-kernel"):
        expected[f"s000-{lost}"] = ledger.NOT_COMPARABLE  # the slides lost kernel/variant
    assert verdicts(m) == expected
    assert LABEL in sec.html and "quick scale" in sec.html and 'sortable"' in sec.html
    assert sec.html.startswith('\n<h2 id="rankconv">') and "data:image/png;base64" in sec.html
    assert sec.datasets[0].label == LABEL and "stand-in for CIFAR-10" in sec.datasets[0].note
    assert "MNIST" in sec.scale_note and "500 iterations" in sec.scale_note
    table = pd.read_csv(tmp_path / "out/tables/rankconv_summary.csv")
    assert len(table) == 5 and (table["reached_target"] == "3/3").all()
    assert (tmp_path / "out/figures/rankconv_curves.png").stat().st_size > 1000


def test_claims_that_fail_on_our_numbers_are_not_reproduced(tmp_path):
    design = dict(DESIGN)
    design[(7, "6")] = (0.95, 0.99, 300, 0.80, 11.0, 84)  # worse, slower to learn, more gap
    design[(3, "1")] = (0.97, 0.98, 200, 0.80, 15.0, 6)  # K=3 rank 1 beats K=7 rank 1
    write_results(tmp_path / "results", design)
    sec = section.build(tmp_path / "results", CFG, "quick", tmp_path / "out")
    got = verdicts(sec.measured)
    for cid in (
        "s000-k7-rank6-beats-dense",
        "s000-k7-rank6-trains-faster",
        "s000-k7-ranks56-beat-dense-early",
        "s000-train-time-rank-correlation",
        "s000-train-time-grows-with-kernel",
    ):
        assert got[cid] == ledger.NOT_REPRODUCED, cid


def test_section_builds_from_real_job_output(tmp_path, real_mnist_dir):
    params = load_params(REPO / "params.yaml")
    block = scale_block(params, "smoke")
    cfg = dict(block["rankconv"], seeds=2, iterations=4, eval_every=2, early_iteration=2)
    results = tmp_path / "results"
    for kernel, rank, variant in job.grid(cfg):
        out = results / "rankconv" / job.config_name(kernel, rank, variant)
        job.train_config({"rankconv": cfg}, kernel, rank, variant, real_mnist_dir, out, None, str)
    sec = section.build(results, cfg, "smoke", tmp_path / "out")
    assert "MNIST (real data)" in sec.html
    metrics = set(sec.measured["metric"])
    assert {"rankconv.test_acc", "rankconv.acc_gap_to_dense", "rankconv.test_time_ratio"} <= metrics
    assert len(sec.measured[sec.measured["metric"] == "rankconv.test_acc"]) == 2 * len(
        job.grid(cfg)
    )
    assert sec.train_seconds > 0
