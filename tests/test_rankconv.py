"""Rank-constrained convolution: exact identities of the layer and the slides' CNN variants."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lowrank.methods.rankconv import RankConv2d, conv_parameters, make_conv
from lowrank.models.rankconv_cnn import RankCNN
from lowrank.models.registry import build


def _double(module: nn.Module) -> nn.Module:
    return module.double()


def test_rank_k_represents_any_dense_kernel_exactly():
    """Rank K has a dense conv's capacity: factors from an SVD give identical outputs."""
    torch.manual_seed(0)
    dense = _double(nn.Conv2d(3, 5, 5, padding="same"))
    layer = _double(RankConv2d(3, 5, 5, rank=5))
    layer.set_from_dense(dense.weight, dense.bias)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    torch.testing.assert_close(layer(x), dense(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(layer.to_conv2d()(x), dense(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel,rank", [(3, 1), (5, 2), (7, 6), (7, 7)])
def test_every_kernel_slice_has_matrix_rank_at_most_n(kernel, rank):
    torch.manual_seed(kernel * 10 + rank)
    layer = _double(RankConv2d(4, 6, kernel, rank))
    ranks = torch.linalg.matrix_rank(layer.weight().detach())  # batched over (out, in)
    assert ranks.shape == (6, 4)
    assert int(ranks.max()) <= rank
    assert int(ranks.min()) == rank  # random factors are generic: exactly rank N


def test_truncated_fit_is_the_best_rank_n_approximation():
    """set_from_dense at rank N < K keeps the N largest singular values of every slice."""
    torch.manual_seed(1)
    w = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    layer = _double(RankConv2d(3, 2, 5, rank=2))
    layer.set_from_dense(w)
    s = torch.linalg.svdvals(w)
    err = torch.linalg.matrix_norm(w - layer.weight().detach())  # Frobenius, per slice
    torch.testing.assert_close(err, s[..., 2:].norm(dim=-1))


def _reference(x, u, v, bias):
    """The layer written out: every slice an explicit sum of outer products, by loops."""
    out_c, in_c, k, n = u.shape
    rows = []
    for o in range(out_c):
        row = []
        for i in range(in_c):
            row.append(sum(torch.outer(u[o, i, :, r], v[o, i, :, r]) for r in range(n)))
        rows.append(torch.stack(row))
    return F.conv2d(x, torch.stack(rows), bias, padding=k // 2)


def test_gradients_match_an_explicit_sum_of_outer_products():
    torch.manual_seed(2)
    layer = _double(RankConv2d(2, 3, 3, rank=2))
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    ours = torch.autograd.grad(((layer(x) - target) ** 2).sum(), [x, layer.u, layer.v, layer.bias])
    u, v, b = (t.detach().clone().requires_grad_(True) for t in (layer.u, layer.v, layer.bias))
    x2 = x.detach().clone().requires_grad_(True)
    ref = torch.autograd.grad(((_reference(x2, u, v, b) - target) ** 2).sum(), [x2, u, v, b])
    for a, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


def test_gradcheck_in_float64():
    torch.manual_seed(3)
    layer = _double(RankConv2d(2, 2, 3, rank=1))
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)

    def f(x, u, v, b):
        return F.conv2d(x, torch.einsum("oikn,oiln->oikl", u, v), b, padding="same")

    params = [p.detach().clone().requires_grad_(True) for p in (layer.u, layer.v, layer.bias)]
    assert torch.autograd.gradcheck(f, (x, *params))
    torch.testing.assert_close(layer(x), f(x, *params))


def test_initialization_matches_the_dense_default_variance():
    """Rebuilt kernels start at nn.Conv2d's per-entry variance 1 / (3 fan_in), at every rank."""
    torch.manual_seed(4)
    target = 1.0 / (3 * 32 * 49)
    dense_var = nn.Conv2d(32, 64, 7).weight.var().item()
    assert dense_var == pytest.approx(target, rel=0.05)
    for rank in (1, 3, 7):
        var = RankConv2d(32, 64, 7, rank).weight().var().item()
        assert var == pytest.approx(target, rel=0.1), rank


def test_parameter_counts_are_2nk_per_slice():
    for k in (3, 5, 7):
        assert conv_parameters(k, None) == k * k
        for n in range(1, k + 1):
            layer = RankConv2d(4, 6, k, n, bias=False)
            assert sum(p.numel() for p in layer.parameters()) == 24 * conv_parameters(k, n)
    assert type(make_conv(2, 3, 5, None)) is nn.Conv2d
    with pytest.raises(ValueError, match="rank"):
        RankConv2d(1, 1, 3, 0)


@pytest.mark.parametrize("variant", ["plain", "dropout", "batchnorm", "both"])
def test_the_four_variants(variant):
    torch.manual_seed(5)
    model = build(
        "rankconv_cnn",
        kernel_size=5,
        rank=2,
        variant=variant,
        channels=[[4, 4], [8]],
        hidden=16,
        in_channels=3,
        image_size=16,
    )
    assert isinstance(model, RankCNN)
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(RankConv2d) == 3 and nn.Conv2d not in kinds
    assert (nn.BatchNorm2d in kinds) == (variant in ("batchnorm", "both"))
    assert kinds.count(nn.BatchNorm2d) in (0, 3)  # after every convolution
    has_dropout = variant in ("dropout", "both")
    assert model.mask_shapes == ([(4, 8, 8)] if has_dropout else [])  # between the two blocks
    x = torch.rand(6, 3, 16, 16)
    assert model(x).shape == (6, 10)
    if has_dropout:  # a given mask is what the dropout applies
        zeros = (torch.zeros(6, 4, 8, 8),)
        ones = (torch.ones(6, 4, 8, 8),)
        assert not torch.equal(model(x, zeros), model(x, ones))
        model.eval()
        assert torch.equal(model(x, zeros), model(x, ones))


def test_dense_baseline_uses_pytorch_conv():
    model = build("rankconv_cnn", kernel_size=3, rank=None, channels=[[4]], hidden=8)
    assert any(type(m) is nn.Conv2d for m in model.modules())
    assert not any(isinstance(m, RankConv2d) for m in model.modules())
