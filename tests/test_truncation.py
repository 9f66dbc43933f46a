import math

import numpy as np
import pytest
import torch
from torch import nn

from lowrank.methods.lorita import collapse, lorita
from lowrank.methods.truncation import (
    LayerSVD,
    gsvt_ranks,
    layer_svds,
    linear_layers,
    lsvt_ranks,
    retained_fraction,
    truncate,
)
from lowrank.models.fcn import fcn


def trained_like_fcn(seed=0):
    torch.manual_seed(seed)
    model = collapse(lorita(fcn(5, 40), 2)).eval()
    with torch.no_grad():  # give BatchNorm non-trivial statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("ranker", [lsvt_ranks, gsvt_ranks])
def test_full_truncation_reproduces_the_model(ranker):
    model = trained_like_fcn()
    svds = layer_svds(model)
    ranks = ranker(svds, 1.0)
    assert ranks == {d.name: d.full_rank for d in svds}
    compressed = truncate(model, svds, ranks).eval()
    x = torch.rand(100, 1, 28, 28)
    torch.testing.assert_close(compressed(x), model(x), rtol=1e-5, atol=1e-5)


def fake_svds(sizes, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i, k in enumerate(sizes):
        s = torch.tensor(np.sort(rng.random(k))[::-1].copy())
        out.append(
            LayerSVD(
                f"l{i}", torch.eye(k, dtype=torch.float64), s, torch.eye(k, dtype=torch.float64)
            )
        )
    return out


@pytest.mark.parametrize("p", [0.01, 0.1, 0.25, 0.5, 0.77, 1.0])
def test_lsvt_keeps_floor_p_rank_at_least_one(p):
    svds = fake_svds([10, 37, 500])
    ranks = lsvt_ranks(svds, p)
    for d in svds:
        assert ranks[d.name] == max(1, math.floor(p * d.full_rank))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_gsvt_keeps_the_globally_largest_values(p):
    svds = fake_svds([10, 37, 50])
    ranks = gsvt_ranks(svds, p)
    total = sum(d.full_rank for d in svds)
    assert sum(ranks.values()) == round(p * total)
    kept = np.concatenate([d.s[: ranks[d.name]].numpy() for d in svds])
    dropped = np.concatenate([d.s[ranks[d.name] :].numpy() for d in svds])
    assert kept.min() >= dropped.max()


def test_gsvt_keeps_one_value_per_layer_even_when_tiny():
    svds = fake_svds([4, 4])
    svds[1] = LayerSVD("l1", svds[1].u, svds[1].s * 1e-6, svds[1].vh)
    assert gsvt_ranks(svds, 0.25) == {"l0": 2, "l1": 1}


def test_retained_fraction_is_the_mean_of_per_matrix_fractions():
    svds = fake_svds([10, 40])
    assert retained_fraction(svds, {"l0": 5, "l1": 10}) == pytest.approx((0.5 + 0.25) / 2)


def test_truncated_layers_have_the_requested_rank_and_thin_form_when_smaller():
    model = trained_like_fcn()
    svds = layer_svds(model)
    ranks = {d.name: 3 for d in svds}
    compressed = truncate(model, svds, ranks)
    thin = [
        m
        for m in compressed.modules()
        if isinstance(m, nn.Sequential) and len(m) == 2 and all(type(c) is nn.Linear for c in m)
    ]
    assert len(thin) == len(svds)  # every layer is cheaper as in -> 3 -> out
    for seq in thin:
        w = seq[1].weight.double() @ seq[0].weight.double()
        assert torch.linalg.matrix_rank(w).item() == 3


def test_truncation_keeps_a_dense_layer_when_factors_would_be_larger():
    layer = nn.Linear(10, 10)
    model = nn.Sequential(layer)
    svds = layer_svds(model)
    compressed = truncate(model, svds, {"0": 6})  # 6 * 20 > 100: stays dense
    assert type(compressed[0]) is nn.Linear
    assert (
        torch.linalg.matrix_rank(compressed[0].weight.double(), rtol=1e-5).item() == 6
    )  # float32 storage
    assert len(linear_layers(compressed)) == 1
