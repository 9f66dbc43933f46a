"""Over the whole ledger: no claim is judged reproduced or not by a run on other data, another
model size or a shorter budget, at the scales that run here (smoke, quick; no CIFAR)."""

from pathlib import Path

import pandas as pd
import pytest

from lowrank.config import load_params, read_yaml, scale_block
from lowrank.report import ledger
from lowrank.report.comparability import RunProtocol
from lowrank.report.sections.toeplitz import _reduced_microbench

REPO = Path(__file__).resolve().parents[1]
METRICS = read_yaml(REPO / "workflow/schemas/metrics.yaml")
CLAIMS = ledger.load_claims(REPO / "claims.yaml", METRICS)


def runs_at(scale: str) -> dict[str, RunProtocol]:
    """The run protocols the report sections declare at `scale` when CIFAR is absent (the
    fallbacks of params.yaml), built the way the sections build them."""
    block = scale_block(load_params(REPO / "params.yaml", {"scale": scale}))
    fcn = block["lorita_fcn"]
    runs = {
        "lorita_fcn": RunProtocol(
            {"mnist": "mnist"},
            fcn["width"] == 500 and not fcn["train_subset"],
            epochs=fcn["epochs"],
            converged_by=fcn["converged_by"],
        )
    }
    for study in ("lorita_cnn", "lorita_vit", "structured"):
        if study in block:
            cfg = block[study]
            used = cfg.get("fallback") or cfg["dataset"]
            runs[study] = RunProtocol(
                {"cifar10": used, "cifar100": used}, False, epochs=cfg["epochs"]
            )
    if "toeplitz" in block:
        runs["toeplitz"] = RunProtocol(
            {"cifar10_gray": block["toeplitz"]["dataset"]},
            True,
            epochs=block["toeplitz"]["epochs"],
            reduced_models=_reduced_microbench(block["toeplitz"]),
        )
    if "rankconv" in block:
        cfg = block["rankconv"]
        runs["rankconv"] = RunProtocol(
            {"cifar10": cfg["dataset"]}, True, iterations=cfg["iterations"]
        )
    if "tucker" in block:
        cfg = block["tucker"]
        used = cfg.get("fallback") or cfg["dataset"]
        for study in ("tucker_posthoc", "tucker_trained"):
            runs[study] = RunProtocol({"cifar10": used}, True, epochs=cfg["epochs"])
    return runs


def rows_for_every_claim(runs: dict[str, RunProtocol]) -> pd.DataFrame:
    """One measured row per claim, on the dataset the run used, at the paper's own value (the
    value that would most tempt a wrong "reproduced")."""
    rows = []
    for c in CLAIMS:
        spec = METRICS[c["metric"]]
        run = runs.get(spec["study"])
        sel = {}
        for k, v in (c["selector"] or {}).items():
            if k == "comparison":
                continue
            v = v[0] if isinstance(v, list) else v
            if k == "dataset" and run is not None:
                v = run.datasets.get(v, v)
            if v is not None:  # a lost selector: its key is filled like a free one
                sel[k] = v
        factor = ledger.UNIT_SCALE.get((spec["unit"], c["unit"]), 1.0)
        value = (c["paper_value"] if c["paper_value"] is not None else 1.0) / factor
        # keys the claim leaves free get two values each, so ordering rules have cases
        free = [k for k in spec["keys"] if k not in sel]
        combos = [{}]
        for k in free:
            combos = [{**d, k: v} for d in combos for v in FREE_VALUES.get(k, (1, 2))]
        for combo in combos:
            for seed in (0, 1):
                rows.append(
                    {
                        "metric": c["metric"],
                        **sel,
                        **combo,
                        **EXTRA_COLUMNS,
                        "seed": seed,
                        "value": value,
                    }
                )
    return pd.DataFrame(rows)


# columns some ordering rules read besides the keys (Tucker: thresholds, analytic counts)
EXTRA_COLUMNS = {
    "analytic": 1.0,
    "energy_captured": 0.95,
    "energy_target": 0.9,
    "full_rank": 8,
    "sensitivity": 0.5,
    "threshold_pts": 1.0,
}
FREE_VALUES = {
    "rank": (1, "dense"),
    "kernel": (3, 7),
    "n_factors": (1, 2),
    "quantity": ("flops_drop_pct", "params_drop_pct"),
}


@pytest.mark.parametrize("scale", ["smoke", "quick"])
def test_no_real_verdict_across_datasets_models_or_budgets(scale):
    runs = runs_at(scale)
    table = ledger.ledger(CLAIMS, rows_for_every_claim(runs), METRICS, scale, "", {}, runs)
    real = table[table["verdict"].isin(ledger.REAL_VERDICTS)]
    assert real["comparable"].all(), real[["id", "reason"]]
    with_data = real[real["claim_dataset"] != ""]
    assert (with_data["claim_dataset"] == with_data["run_dataset"]).all()
    # at these scales nothing runs on the paper's data, sizes and budget: no real verdict
    assert real.empty, real[["id", "verdict", "reason"]].to_string()
    # every row that is not judged says why
    for _, r in table.iterrows():
        if r["verdict"] in (ledger.NOT_COMPARABLE, ledger.NOT_RUN):
            assert r["reason"], r["id"]
    stand_in = table[table["verdict"].isin((ledger.HOLDS_STAND_IN, ledger.FAILS_STAND_IN))]
    assert stand_in["reason"].str.contains("stand-in data").all()
    timed = table[table["measure"] == "absolute_time"]
    assert not timed["verdict"].isin(ledger.REAL_VERDICTS).any()
    assert (
        timed.loc[timed["verdict"] != ledger.NOT_RUN, "reason"]
        .str.contains("absolute time on another machine")
        .all()
    )
    # the MNIST-for-grayscale-CIFAR-10 accuracies of seed 001 say so
    acc = table[table["id"] == "s001-s14-rank5-test-acc"].iloc[0]
    assert acc["verdict"] == ledger.NOT_COMPARABLE
    assert "stand-in data: MNIST for grayscale CIFAR-10" in acc["reason"]


def test_summary_counts_match_the_table():
    runs = runs_at("quick")
    table = ledger.ledger(CLAIMS, rows_for_every_claim(runs), METRICS, "quick", "", {}, runs)
    overview = ledger.summary(table)
    assert sum(overview["counts"].values()) == len(table) == len(CLAIMS)
    assert overview["judged"] == int(table["verdict"].isin(ledger.REAL_VERDICTS).sum())
    assert overview["stand_in"] == int(
        table["verdict"].isin((ledger.HOLDS_STAND_IN, ledger.FAILS_STAND_IN)).sum()
    )


def test_per_model_convergence_judges_only_the_converged_models():
    from lowrank.report.comparability import ClaimProtocol, compare

    claim = ClaimProtocol("mnist", "fcn", "converged", "accuracy")
    run = RunProtocol(
        datasets={"mnist": "mnist"},
        full_size=True,
        epochs=3,
        converged_by="fcn6_N1: within 0.1 points of 6 epochs",
        unconverged=({"depth": 6, "n_factors": 2},),
    )
    assert compare(claim, run, {"depth": 6, "n_factors": 1}).same
    assert compare(claim, run, {"depth": 8, "n_factors": 2}).same
    trained_less = compare(claim, run, {"depth": 6, "n_factors": 2}).differences
    assert trained_less == (
        "under-trained: 3 epoch(s), not trained to convergence (depth 6, n_factors 2)",
    )
    # a claim over every N at depth 6 (or over everything) reads the unconverged runs too
    assert not compare(claim, run, {"depth": 6}).same
    assert not compare(claim, run, None).same


def test_converged_by_per_model_marks_the_rest_under_trained_in_table1():
    from lowrank.report.build import fcn_run_protocol
    from lowrank.report.tables import table1

    def summary(depth, n):
        run = {"seed": 0, "weight_decay": 1e-4, "test_acc": 0.98}
        return {
            "depth": depth, "n_factors": n, "width": 500, "train_images": 50_000,
            "epochs": 3, "lr": 1e-3, "runs": [run], "selected_weight_decay": 1e-4,
        }  # fmt: skip

    summaries = [summary(6, 1), summary(6, 2)]
    run = fcn_run_protocol(summaries, {"converged_by": {"fcn6_N1": "measured"}})
    assert run.converged_by == "fcn6_N1: measured"
    assert run.unconverged == ({"depth": 6, "n_factors": 2},)
    t1 = table1(summaries, {}, run)
    assert t1["converged"].tolist() == [True, False]
    assert not table1(summaries, {}, fcn_run_protocol(summaries, {}))["converged"].any()
