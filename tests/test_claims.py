"""The claims ledger: complete, tied to the results schema, verdicts computed correctly."""

from pathlib import Path

import pandas as pd
import pytest

from lowrank.config import read_yaml
from lowrank.report import ledger

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


def claim(**kw):
    base = {
        "id": "x",
        "source": "s",
        "location": "l",
        "claim": "c",
        "paper_value": 0.98,
        "unit": "fraction",
        "metric": "lorita_fcn.test_acc",
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


@pytest.mark.parametrize(
    "values,verdict",
    [
        ([0.978, 0.980, 0.982], ledger.REPRODUCED),
        ([0.990, 0.992], ledger.BETTER),
        ([0.950, 0.955], ledger.NOT_REPRODUCED),
    ],
)
def test_verdicts_follow_tolerance_and_direction(values, verdict):
    row = ledger.evaluate(claim(), measured(values), METRICS, "paper", "", {})
    assert row.verdict == verdict
    assert "(n=" in row.ours


def test_lower_is_better_flips_the_direction():
    c = claim(better="lower")
    assert ledger.evaluate(c, measured([0.90]), METRICS, "paper", "", {}).verdict == ledger.BETTER


def test_unit_conversion_fraction_to_percent():
    c = claim(unit="percent", paper_value=98.0, tolerance=0.5)
    row = ledger.evaluate(c, measured([0.979]), METRICS, "paper", "", {})
    assert row.verdict == ledger.REPRODUCED and "97.9" in row.ours


def test_missing_results_and_unbuilt_studies_are_not_run():
    row = ledger.evaluate(
        claim(selector={"depth": 99, "n_factors": 1}), measured([0.98]), METRICS, "quick", "", {}
    )
    assert row.verdict == ledger.NOT_RUN
    c = claim(metric="toeplitz.naive_slowdown", selector={}, unit="ratio", paper_value=13)
    unbuilt = {**METRICS, c["metric"]: {**METRICS[c["metric"]], "produced": False}}
    row = ledger.evaluate(c, measured([0.98]), unbuilt, "quick", "", {})
    assert row.verdict == ledger.NOT_RUN and "not built" in row.reason


def test_lost_selector_or_number_is_not_comparable():
    data = pd.concat([measured([0.97], n=2), measured([0.96], n=3)])
    row = ledger.evaluate(
        claim(selector={"depth": 6, "n_factors": None}), data, METRICS, "paper", "", {}
    )
    assert row.verdict == ledger.NOT_COMPARABLE and "n_factors=2" in row.ours
    row = ledger.evaluate(
        claim(paper_value=None, selector={"depth": 6, "n_factors": 2}),
        data,
        METRICS,
        "paper",
        "",
        {},
    )
    assert row.verdict == ledger.NOT_COMPARABLE


def test_ordering_claims_are_checked_on_our_numbers():
    rows = pd.DataFrame(
        [
            {
                "metric": "lorita_fcn.min_retained_pct",
                "depth": 10,
                "method": "GSVT",
                "n_factors": n,
                "seed": 0,
                "value": v,
            }
            for n, v in ((1, 50.0), (2, 30.0), (3, 25.0))
        ]
    )
    c = claim(
        metric="lorita_fcn.min_retained_pct",
        paper_value=None,
        unit="percent",
        selector={"depth": [10], "method": ["GSVT"], "comparison": "lorita_lt_n1"},
    )
    assert ledger.evaluate(c, rows, METRICS, "paper", "", {}).verdict == ledger.REPRODUCED
    rows.loc[rows["n_factors"] == 1, "value"] = 10.0
    assert ledger.evaluate(c, rows, METRICS, "paper", "", {}).verdict == ledger.NOT_REPRODUCED


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
    acc = ledger.evaluate(claim(), measured([0.98]), METRICS, "quick", "", {})
    assert acc.wall_clock is False
    c = claim(metric="toeplitz.naive_slowdown", selector={}, unit="ratio", paper_value=13)
    rows = pd.DataFrame([{"metric": c["metric"], "seed": 0, "value": 20.0}])
    timed = ledger.evaluate(c, rows, METRICS, "quick", "", {})
    assert timed.wall_clock is True and timed.verdict == ledger.BETTER
