import pytest
import torch

from lowrank.measure.flops import analytic_fcn, ptflops_count
from lowrank.methods.lorita import collapse, lorita
from lowrank.methods.truncation import layer_svds, lsvt_ranks, truncate
from lowrank.models.fcn import fcn


@pytest.mark.parametrize("depth,width", [(2, 16), (6, 500), (8, 500), (10, 64)])
def test_ptflops_agrees_with_analytic_count_for_dense_fcn(depth, width):
    macs, params = ptflops_count(fcn(depth, width), (1, 28, 28))
    assert (macs, params) == analytic_fcn(depth, width)


def test_ptflops_counts_collapsed_lorita_model_like_the_dense_one():
    model = collapse(lorita(fcn(6, 100), 3))
    assert ptflops_count(model, (1, 28, 28)) == analytic_fcn(6, 100)


@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.3, 0.6])
def test_ptflops_agrees_with_analytic_count_for_truncated_fcn(fraction):
    torch.manual_seed(0)
    model = fcn(6, 200).eval()
    svds = layer_svds(model)
    ranks = lsvt_ranks(svds, fraction)
    compressed = truncate(model, svds, ranks)
    expected = analytic_fcn(6, 200, [ranks[d.name] for d in svds])
    assert ptflops_count(compressed, (1, 28, 28)) == expected
    assert expected[0] < analytic_fcn(6, 200)[0]
