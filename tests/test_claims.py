"""The claims ledger: complete, tied to the results schema, verdicts computed correctly."""

from pathlib import Path

import pandas as pd
import pytest

from lowrank.config import read_yaml
from lowrank.report import ledger
from lowrank.report.comparability import DATASET_LABELS, MEASURES, RunProtocol

REPO = Path(__file__).resolve().parents[1]
METRICS = read_yaml(REPO / "workflow/schemas/metrics.yaml")
CLAIMS = ledger.load_claims(REPO / "claims.yaml", METRICS)
SOURCES = [
    "000_7c1706fb9bcd7dd3.txt",
    "001_a55016b4276d39c2.txt",
    "002_914d7371f7a973bd.txt",
    "003_fcc1a12700470568.txt",
    "004_412d21979407f75a.txt",
]


def test_every_claim_names_a_metric_and_keys_of_the_results_schema():
    for claim in CLAIMS:
        spec = METRICS[claim["metric"]]
        keys = set(claim["selector"] or {}) - {"comparison"}
        assert keys <= set(spec["keys"]), (claim["id"], keys - set(spec["keys"]))
        assert claim["better"] in ("higher", "lower")
        assert claim["tolerance"] >= 0 and claim["tolerance_reason"]


def test_every_source_and_every_must_reproduce_item_has_claims():
    by_source = {s: [c for c in CLAIMS if c["source"] == s] for s in SOURCES}
    assert all(by_source.values()), [s for s, c in by_source.items() if not c]
    lorita = by_source["004_412d21979407f75a.txt"]
    for location in ("Table 1", "Table 2", "Table 3", "Table 4"):
        assert any(c["location"].startswith(location) for c in lorita), location
    metrics = {c["metric"] for c in CLAIMS}
    # the README's must-reproduce column, one metric family per item
    for needed in (
        "rankconv.test_acc",
        "rankconv.generalization_gap",
        "rankconv.train_seconds",
        "toeplitz.test_acc",
        "toeplitz.test_seconds",
        "toeplitz.naive_slowdown",
        "tucker_posthoc.selected_rank",
        "tucker_trained.rank",
        "lorita_fcn.test_acc",
        "lorita_fcn.min_retained_pct",
        "lorita_cnn.test_acc",
        "lorita_vit.test_acc",
        "structured.flops_drop_pct",
        "structured.params_drop_pct",
    ):
        assert needed in metrics, needed


FCN_PROTOCOL = {"dataset": "mnist", "model": "fcn", "budget": "converged", "measure": "accuracy"}
# A run that matches FCN_PROTOCOL: real MNIST, full size, trained to convergence.
CONVERGED = {
    "lorita_fcn": RunProtocol(
        {"mnist": "mnist"}, True, epochs=30, converged_by="validation plateau", seeds=3
    )
}


def claim(**kw):
    base = {
        "id": "x",
        "source": "s",
        "location": "l",
        "claim": "c",
        "paper_value": 0.98,
        "unit": "fraction",
        "metric": "lorita_fcn.test_acc",
        "protocol": FCN_PROTOCOL,
        "selector": {"depth": 6, "n_factors": 1},
        "tolerance": 0.005,
        "tolerance_reason": "r",
        "better": "higher",
        "notes": "",
    }
    return base | kw


def measured(values, depth=6, n=1):
    return pd.DataFrame(
        [
            {"metric": "lorita_fcn.test_acc", "depth": depth, "n_factors": n, "seed": i, "value": v}
            for i, v in enumerate(values)
        ]
    )


def judge(c, rows, runs=CONVERGED, scale="paper"):
    return ledger.evaluate(c, rows, METRICS, scale, "", {}, runs)


@pytest.mark.parametrize(
    "values,verdict",
    [
        ([0.978, 0.980, 0.982], ledger.REPRODUCED),
        ([0.990, 0.992], ledger.NOT_REPRODUCED),  # two-sided: better beyond tolerance is a miss
        ([0.950, 0.955], ledger.NOT_REPRODUCED),
    ],
)
def test_verdicts_follow_tolerance_both_ways(values, verdict):
    row = judge(claim(), measured(values))
    assert row.verdict == verdict
    assert "(n=" in row.ours
    assert row.comparable


def test_one_sided_claims_count_beyond_tolerance_as_better_and_fail_on_the_other_side():
    c = claim(sided="one")
    assert judge(c, measured([0.990, 0.992])).verdict == ledger.BETTER
    assert judge(c, measured([0.978, 0.979])).verdict == ledger.REPRODUCED
    assert judge(c, measured([0.95, 0.96])).verdict == ledger.NOT_REPRODUCED
    lower = claim(sided="one", better="lower")
    assert judge(lower, measured([0.90])).verdict == ledger.BETTER
    assert judge(lower, measured([0.99])).verdict == ledger.NOT_REPRODUCED


def test_interval_is_shown_but_never_rescues_a_mean_outside_the_band():
    # mean 0.9735 is 0.0065 below 0.98 (beyond 0.005); the interval reaches 0.9765
    row = judge(claim(), measured([0.9705, 0.9765]))
    assert row.verdict == ledger.NOT_REPRODUCED and "crosses the tolerance band" in row.reason
    # one diverged seed of two: the range spans the paper's value, the mean does not
    row = judge(claim(), measured([0.79, 0.984]))
    assert row.verdict == ledger.NOT_REPRODUCED
    inside = judge(claim(), measured([0.979, 0.981]))
    assert inside.verdict == ledger.REPRODUCED and "crosses" not in inside.reason
    one = judge(claim(), measured([0.98]))
    assert "n=1 (no interval)" in one.reason


def test_unit_conversion_fraction_to_percent():
    c = claim(unit="percent", paper_value=98.0, tolerance=0.5)
    row = judge(c, measured([0.979]))
    assert row.verdict == ledger.REPRODUCED and "97.9" in row.ours


def test_missing_results_and_unbuilt_studies_are_not_run():
    row = judge(claim(selector={"depth": 99, "n_factors": 1}), measured([0.98]), scale="quick")
    assert row.verdict == ledger.NOT_RUN
    c = claim(metric="toeplitz.naive_slowdown", selector={}, unit="ratio", paper_value=13)
    unbuilt = {**METRICS, c["metric"]: {**METRICS[c["metric"]], "produced": False}}
    row = ledger.evaluate(c, measured([0.98]), unbuilt, "quick", "", {})
    assert row.verdict == ledger.NOT_RUN and "not built" in row.reason


def test_lost_selector_or_number_is_not_comparable():
    data = pd.concat([measured([0.97], n=2), measured([0.96], n=3)])
    row = judge(claim(selector={"depth": 6, "n_factors": None}), data)
    assert row.verdict == ledger.NOT_COMPARABLE and "n_factors=2" in row.ours
    row = judge(claim(paper_value=None, selector={"depth": 6, "n_factors": 2}), data)
    assert row.verdict == ledger.NOT_COMPARABLE


def min_retained_rows(values=((1, 50.0), (2, 30.0), (3, 25.0))):
    return pd.DataFrame(
        [
            {
                "metric": "lorita_fcn.min_retained_pct",
                "depth": 10,
                "method": "GSVT",
                "head": "truncated",
                "n_factors": n,
                "seed": 0,
                "value": v,
            }
            for n, v in values
        ]
    )


def ordering_claim():
    return claim(
        metric="lorita_fcn.min_retained_pct",
        paper_value=None,
        unit="percent",
        protocol={**FCN_PROTOCOL, "measure": "ordering"},
        selector={"depth": [10], "method": ["GSVT"], "comparison": "lorita_lt_n1"},
    )


def test_ordering_claims_are_checked_on_our_numbers():
    rows = min_retained_rows()
    assert judge(ordering_claim(), rows).verdict == ledger.REPRODUCED
    rows.loc[rows["n_factors"] == 1, "value"] = 10.0
    assert judge(ordering_claim(), rows).verdict == ledger.NOT_REPRODUCED


STAND_IN = {
    "toeplitz": RunProtocol({"cifar10_gray": "mnist"}, True, epochs=250),
    "lorita_fcn": RunProtocol({"mnist": "mnist"}, True, epochs=2, converged_by=None),
}


def toeplitz_acc_claim(**kw):
    return (
        claim(
            metric="toeplitz.test_acc",
            paper_value=0.397,
            protocol={
                "dataset": "cifar10_gray",
                "model": "twoconv",
                "budget": {"epochs": 250},
                "measure": "accuracy",
            },
            selector={"rank": "full", "method": "torch", "epoch": "mean"},
            tolerance=0.02,
        )
        | kw
    )


def toeplitz_rows(value):
    return pd.DataFrame(
        [
            {
                "metric": "toeplitz.test_acc",
                "rank": "full",
                "method": "torch",
                "epoch": "mean",
                "seed": 0,
                "value": value,
            }
        ]
    )


def test_stand_in_data_never_gets_a_real_verdict():
    """An accuracy on MNIST says nothing about a grayscale CIFAR-10 number: not comparable,
    with the reason; however close or far the value."""
    for value in (0.917, 0.397, 0.1):
        row = judge(toeplitz_acc_claim(), toeplitz_rows(value), STAND_IN, "quick")
        assert row.verdict == ledger.NOT_COMPARABLE
        assert "stand-in data: MNIST for grayscale CIFAR-10" in row.reason
        assert not row.comparable and row.run_dataset == "mnist"


def test_orderings_on_stand_in_data_hold_or_fail_there_and_are_never_reproduced():
    c = ordering_claim() | {
        "protocol": {**FCN_PROTOCOL, "dataset": "cifar10", "measure": "ordering"}
    }
    runs = {"lorita_fcn": RunProtocol({"cifar10": "mnist"}, True, converged_by="x")}
    assert judge(c, min_retained_rows(), runs).verdict == ledger.HOLDS_STAND_IN
    flipped = min_retained_rows(((1, 10.0), (2, 30.0), (3, 25.0)))
    assert judge(c, flipped, runs).verdict == ledger.FAILS_STAND_IN


def test_under_trained_runs_are_not_comparable_with_the_budget_in_the_reason():
    row = judge(claim(), measured([0.953]), STAND_IN, "quick")
    assert row.verdict == ledger.NOT_COMPARABLE
    assert "under-trained: 2 epoch(s), not trained to convergence" in row.reason
    short = toeplitz_acc_claim(protocol={**toeplitz_acc_claim()["protocol"], "dataset": None})
    runs = {"toeplitz": RunProtocol({"cifar10_gray": "cifar10_gray"}, True, epochs=3)}
    row = judge(short, toeplitz_rows(0.39), runs, "quick")
    assert row.verdict == ledger.NOT_COMPARABLE and "under-trained: 3 of 250 epochs" in row.reason
    # an ordering at a short budget on the right data: holds at reduced scale, not reproduced
    assert judge(ordering_claim(), min_retained_rows(), STAND_IN).verdict == ledger.HOLDS_REDUCED


def test_a_converged_run_on_the_claims_data_gets_a_real_verdict():
    """A made-up claim about the smoke FCN, judged on a converged run of its own data."""
    c = claim(id="made-up", paper_value=0.9, tolerance=0.01)
    assert judge(c, measured([0.905, 0.897, 0.901])).verdict == ledger.REPRODUCED
    assert judge(c, measured([0.80, 0.81])).verdict == ledger.NOT_REPRODUCED


def test_absolute_times_are_never_judged_and_point_to_their_ratio_row():
    by_id = {c["id"]: c for c in CLAIMS}
    for c in CLAIMS:
        if c["protocol"]["measure"] != "absolute_time":
            continue
        rows = pd.DataFrame(
            [
                {
                    "metric": c["metric"],
                    **{
                        k: v
                        for k, v in (c["selector"] or {}).items()
                        if k != "comparison" and not isinstance(v, list)
                    },
                    "seed": 0,
                    "value": v,
                }
                for v in (0.001, 1e6)
            ]
        )
        runs = {
            METRICS[c["metric"]]["study"]: RunProtocol(
                {c["protocol"]["dataset"]: c["protocol"]["dataset"]},
                True,
                epochs=10**6,
                iterations=10**6,
                converged_by="x",
            )
        }
        row = judge(c, rows, runs)
        assert row.verdict not in ledger.REAL_VERDICTS, c["id"]
        if c.get("ratio_row"):
            assert by_id[c["ratio_row"]]["protocol"]["measure"] == "ratio"
            assert c["ratio_row"] in row.reason


def test_identities_are_marked_and_never_counted_as_reproduced():
    identities = [c for c in CLAIMS if c["protocol"]["measure"] == "identity"]
    assert {c["id"] for c in identities} >= {
        "s001-s14-naive-acc-equals-torch",
        "s003-params-count",
        "s003-rank-from-hooi",
    }
    c = claim(protocol={**FCN_PROTOCOL, "measure": "identity"})
    assert judge(c, measured([0.98])).verdict == ledger.IDENTITY
    assert judge(c, measured([0.5])).verdict == ledger.NOT_REPRODUCED


def wrong_side(c: dict) -> float:
    """A value for which the claim's statement (or, without one, its number) is false."""
    statement = c.get("statement")
    if statement:
        step = max(abs(statement["value"]) * 0.05, 1e-3)
        return statement["value"] + (step if statement["op"] == "<" else -step)
    p, tol = c["paper_value"], c["tolerance"]
    higher = c["better"] == "higher"
    margin = 2 * tol + 1e-3
    return p - margin if higher else p + margin


def test_no_tolerance_admits_the_opposite_of_any_claim():
    """Every numeric claim of claims.yaml fails for a value on the wrong side of what it
    states, under its own tolerance, even on a perfectly comparable run."""
    checked = 0
    for c in CLAIMS:
        if c["paper_value"] is None or c["protocol"]["measure"] in ("absolute_time",):
            continue
        sel = {k: v for k, v in (c["selector"] or {}).items() if v is not None}
        if any(isinstance(v, list) for v in sel.values()) or len(sel) < len(c["selector"] or {}):
            continue  # lost selectors: never judged
        spec = METRICS[c["metric"]]
        factor = ledger.UNIT_SCALE.get((spec["unit"], c["unit"]), 1.0)
        value = wrong_side(c) / factor
        rows = pd.DataFrame([{"metric": c["metric"], **sel, "seed": 0, "value": value}])
        p = c["protocol"]
        runs = {
            spec["study"]: RunProtocol(
                {p["dataset"]: p["dataset"]} if p["dataset"] else {},
                True,
                epochs=10**6,
                iterations=10**6,
                converged_by="x",
            )
        }
        row = judge(c, rows, runs)
        assert row.verdict not in (ledger.REPRODUCED, ledger.BETTER, ledger.IDENTITY), c["id"]
        checked += 1
    assert checked >= 60


def test_claims_that_state_a_direction_carry_a_statement():
    """'faster', 'half the time', 'over 13x': the words, not only the number, are checked."""
    for cid in (
        "s001-fig2-matmul-half-time",
        "s001-s14-naive-slowdown",
        "s001-s15-rank5-faster-than-torch",
        "s001-s15-rank4-faster-than-torch",
        "s001-s15-rank3-faster-than-torch",
    ):
        c = next(x for x in CLAIMS if x["id"] == cid)
        assert c.get("statement"), cid
    half = next(x for x in CLAIMS if x["id"] == "s001-fig2-matmul-half-time")
    rows = pd.DataFrame(
        [
            {
                "metric": half["metric"],
                "num": "matmul",
                "den": "naive_loop_conv",
                "seed": 0,
                "value": 0.94,
            }
        ]
    )
    runs = {"toeplitz": RunProtocol({}, True, epochs=250)}
    assert judge(half, rows, runs).verdict == ledger.NOT_REPRODUCED
    rank5 = next(x for x in CLAIMS if x["id"] == "s001-s15-rank5-faster-than-torch")
    rows = pd.DataFrame(
        [
            {
                "metric": rank5["metric"],
                "rank": 5,
                "method": "numpy_toeplitz",
                "seed": 0,
                "value": -0.5,
            }
        ]
    )
    runs = {"toeplitz": RunProtocol({"cifar10_gray": "cifar10_gray"}, True, epochs=250)}
    assert judge(rank5, rows, runs).verdict == ledger.NOT_REPRODUCED


def test_every_claim_declares_a_protocol_the_schema_accepts():
    for c in CLAIMS:
        proto = c["protocol"]
        assert proto["measure"] in MEASURES, c["id"]
        assert proto["dataset"] in (None, *DATASET_LABELS), c["id"]


def test_bootstrap_interval_contains_the_mean():
    lo, hi = ledger.bootstrap_ci([0.1, 0.2, 0.3, 0.4])
    assert lo < 0.25 < hi
    assert ledger.bootstrap_ci([0.5]) == (0.5, 0.5)


def test_timings_are_flagged_wall_clock_and_nothing_else_is():
    """Run-to-run comparisons (tests/test_slurm.py) drop exactly the flagged rows."""
    for name, spec in METRICS.items():
        if spec["unit"] == "seconds" or name.endswith(("time_ratio", "_slowdown")):
            assert spec.get("wall_clock"), name
        if spec["unit"] in ("fraction", "count", "mflops", "mparams"):
            assert not spec.get("wall_clock"), name
    acc = judge(claim(), measured([0.98]), scale="quick")
    assert acc.wall_clock is False
    c = next(x for x in CLAIMS if x["id"] == "s001-s14-naive-slowdown")
    rows = pd.DataFrame([{"metric": c["metric"], "seed": 0, "value": 20.0}])
    runs = {"toeplitz": RunProtocol({"cifar10_gray": "cifar10_gray"}, True, epochs=250)}
    timed = judge(c, rows, runs)
    assert timed.wall_clock is True and timed.verdict == ledger.BETTER  # one-sided "over 13x"
