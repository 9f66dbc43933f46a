"""The FCN truncation sweep: head kept vs truncated, GSVT refinement on the paper's axis."""

import pandas as pd
import pytest
import torch

from lowrank.methods.lorita import collapse, lorita
from lowrank.methods.truncation import (
    gsvt_ranks,
    layer_svds,
    pooled_fraction,
    retained_fraction,
    truncate,
)
from lowrank.models.fcn import fcn
from lowrank.report.figures import on_common_axis
from lowrank.report.tables import compression_summary, min_retained_per_seed
from lowrank.sweep.truncation_sweep import refine_targets, sweep_curve


def small_model(seed=0):
    torch.manual_seed(seed)
    return collapse(lorita(fcn(4, 24, in_features=784), 2)).eval()


def data(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(200, 1, 28, 28, generator=g)
    return x, small_model()(x).argmax(1)  # labels the dense model gets right


def test_kept_head_is_left_out_of_the_truncation_and_the_axis():
    model = small_model()
    every = layer_svds(model)
    body = every[:-1]
    ranks = gsvt_ranks(body, 0.3)
    assert every[-1].name not in ranks
    out = truncate(model, body, ranks)
    head_name = every[-1].name
    torch.testing.assert_close(
        out.get_submodule(head_name).weight, model.get_submodule(head_name).weight
    )
    assert retained_fraction(body, ranks) == pytest.approx(
        sum(ranks[d.name] / d.full_rank for d in body) / len(body)
    )
    assert 0 < pooled_fraction(body, ranks) <= 1


def test_full_share_with_head_kept_reproduces_the_model():
    model = small_model()
    body = layer_svds(model)[:-1]
    x, _ = data()
    out = truncate(model, body, gsvt_ranks(body, 1.0))
    torch.testing.assert_close(out(x), model(x), rtol=1e-4, atol=1e-4)


def test_refinement_closes_gaps_where_accuracy_falls_and_leaves_flat_parts_alone():
    """A made-up curve: realized share = target, accuracy drop a step at 0.5."""

    def ranks_at(t):
        return str(round(t * 1000))  # a new model at every 0.001 of target

    def evaluate(t):
        return {"ranks": ranks_at(t), "retained_fraction": t, "acc_drop": 0.5 if t < 0.5 else 0.0}

    points = {t: evaluate(t) for t in (0.1, 0.3, 0.7, 0.9)}
    refine_targets(points, ranks_at, evaluate, max_gap=0.02, tolerance=0.01)
    xs = sorted(points)
    falls = [
        (a, b)
        for a, b in zip(xs, xs[1:], strict=False)
        if points[a]["acc_drop"] != points[b]["acc_drop"]
    ]
    assert len(falls) == 1 and falls[0][1] - falls[0][0] <= 0.02 + 1e-9
    # flat stretches are not refined
    assert not any(0.1 < t < 0.3 or 0.7 < t < 0.9 for t in points)


def test_refinement_stops_where_one_rank_step_is_the_jump():
    """Only two models exist between the targets: nothing to add, no endless bisection."""

    def ranks_at(t):
        return "a" if t < 0.55 else "b"

    def evaluate(t):
        a = t < 0.55
        return {
            "ranks": ranks_at(t),
            "retained_fraction": 0.1 if a else 0.9,
            "acc_drop": 0.9 if a else 0.0,
        }

    points = {0.2: evaluate(0.2), 0.8: evaluate(0.8)}
    refine_targets(points, ranks_at, evaluate, max_gap=0.02, tolerance=0.01)
    assert sorted(points) == [0.2, 0.8]


def test_sweep_curve_rows_and_summary_per_seed():
    model = small_model()
    x, y = data()
    svds = layer_svds(model)
    rows = []
    for seed in (0, 1):
        curve = sweep_curve(model, svds, "GSVT", [0.1, 0.5, 1.0], (x, y), 1.0, 0.05, 0.01)
        for p in curve:
            rows.append(
                {
                    "depth": 4,
                    "n_factors": 2,
                    "seed": seed,
                    "head": "truncated",
                    "method": "GSVT",
                    **p,
                    "base_macs": 1,
                    "base_params": 1,
                }
            )
    sweep = pd.DataFrame(rows)
    assert {"pooled_fraction", "head_rank", "refined"} <= set(sweep.columns)
    full = sweep[sweep["target_fraction"] == 1.0]
    assert (full["acc_drop"].abs() < 1e-9).all()
    per_seed = min_retained_per_seed(sweep, 0.01)
    assert len(per_seed) == 2
    summary = compression_summary(sweep, 0.01)
    assert summary["seeds"].tolist() == [2]
    common = on_common_axis(sweep)
    assert common.groupby("seed")["retained_pct"].max().nunique() == 1


def test_drop_at_retained_is_read_on_the_realized_axis():
    """Issue: the drop 'at 20% retained' was read at the target 0.20 although that point
    was realized at 24.6%; now it is interpolated on the realized axis or left out."""
    from lowrank.report.sections.lorita_models import drops_at_retained

    group = pd.DataFrame(
        {
            "target_fraction": [0.1, 0.2, 0.35, 1.0],
            "retained_fraction": [0.15, 0.246, 0.407, 1.0],
            "acc_drop": [0.60, 0.20, 0.05, 0.0],
        }
    )
    got = dict(drops_at_retained(group, [0.1, 0.2, 0.35, 1.0]))
    assert 10 not in got  # below the smallest realized share: not read off 15%
    assert got[20] == pytest.approx(100 * (0.60 + (0.20 - 0.60) * (20 - 15) / (24.6 - 15)))
    assert 35 not in got  # the nearest measured point (40.7%) is 5.7 points away
    assert got[100] == 0.0
