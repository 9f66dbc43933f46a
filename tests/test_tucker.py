"""Tucker methods: exact at full rank, cost counts, planted ranks recovered (seeds 002/003)."""

import numpy as np
import pytest
import torch
from torch import nn

from lowrank.measure.flops import ptflops_count
from lowrank.methods import tucker
from lowrank.methods.tucker_conv import (
    TuckerConv2d,
    hooi,
    hooi_ranks,
    hooi_spectra,
    naive_forward,
    realize,
    tucker_conv_params,
    tuckerize,
)
from lowrank.models.registry import build

torch.manual_seed(0)


def planted_kernel(cout, cin, k, r_out, r_in, seed=0) -> torch.Tensor:
    """A kernel of exact multilinear ranks (r_out, r_in) on its channel modes."""
    g = torch.Generator().manual_seed(seed)
    core = torch.randn(r_out, r_in, k, k, generator=g, dtype=torch.float64)
    u_out = torch.linalg.qr(torch.randn(cout, r_out, generator=g, dtype=torch.float64))[0]
    u_in = torch.linalg.qr(torch.randn(cin, r_in, generator=g, dtype=torch.float64))[0]
    return torch.einsum("abkl,oa,ib->oikl", core, u_out, u_in).float()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 3, "padding": 1},
        {"kernel_size": 5, "stride": 2, "padding": 2, "bias": False},
        {"kernel_size": 3, "dilation": 2, "padding": 2, "padding_mode": "reflect"},
    ],
)
def test_full_rank_tucker2_reproduces_the_layer(kwargs):
    conv = nn.Conv2d(6, 10, **kwargs)
    x = torch.randn(4, 6, 13, 13)
    decomposed = tucker.tucker2_conv(conv, 10, 6)
    assert [m.kernel_size for m in decomposed] == [(1, 1), conv.kernel_size, (1, 1)]
    torch.testing.assert_close(decomposed(x), conv(x), rtol=1e-5, atol=1e-5)


def test_ptflops_counts_the_decomposed_layer_as_the_analytic_formula():
    conv = nn.Conv2d(16, 32, 3, stride=2, padding=1)
    ranks = (7, 5)
    layer = tucker.tucker2_conv(conv, *ranks)
    macs, params = ptflops_count(layer, (16, 15, 15))
    assert macs == tucker.tucker2_macs(conv, *ranks, (15, 15), (8, 8))
    assert params == tucker.tucker2_params(conv, *ranks)
    dense_macs, _ = ptflops_count(conv, (16, 15, 15))
    assert dense_macs == tucker.conv_macs(16, 32, (3, 3), (8, 8), True)


def test_energy_rule_recovers_planted_ranks():
    model = nn.Sequential(nn.Conv2d(8, 12, 3), nn.ReLU(), nn.Conv2d(12, 10, 3))
    with torch.no_grad():
        model[0].weight.copy_(planted_kernel(12, 8, 3, 3, 2, seed=1))
        model[2].weight.copy_(planted_kernel(10, 12, 3, 4, 5, seed=2))
    ranks = tucker.energy_ranks(model, energy=0.9999)
    assert ranks == {"0": (3, 2), "2": (4, 5)}
    assert tucker.energy_rank(np.array([4.0, 3.0, 0.0]), 0.6) == 1  # 16/25 >= 0.6


def test_search_rule_grows_to_the_planted_rank():
    conv = nn.Conv2d(8, 12, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(planted_kernel(12, 8, 3, 3, 3, seed=3))
    model = nn.Sequential(conv)
    x = torch.randn(8, 8, 9, 9)
    dense = conv(x).detach()

    def fidelity(m):  # 1 - relative output error: 1 at an exact decomposition
        with torch.no_grad():
            return 1 - float((m(x) - dense).norm() / dense.norm())

    ranks, trace = tucker.search_ranks(model, fidelity, threshold=1e-4, log=lambda s: None)
    assert ranks == {"0": (3, 3)}
    assert [t["rank"] for t in trace["0"]] == [1, 2, 3]
    assert trace["0"][1]["acc"] < 1 - 1e-3  # rank 2 really is too small


def test_decompose_handles_nested_names_and_leaves_the_original_alone():
    model = build("tutorial_cnn", in_channels=1, image_size=32)
    names = [n for n, _ in tucker.eligible_convs(model)]
    assert names == ["0", "3"]
    nested = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3)), nn.Flatten())
    new = tucker.decompose(nested, {"0.0": (4, 3)})
    assert isinstance(new[0][0], nn.Sequential) and isinstance(nested[0][0], nn.Conv2d)
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(new(x), nested(x), rtol=1e-5, atol=1e-5)
    shapes = tucker.layer_shapes(model, (1, 32, 32))
    assert shapes["3"] == {"input": (6, 14, 14), "out_hw": (10, 10)}


def test_tucker_conv_at_full_rank_represents_any_dense_kernel():
    conv = nn.Conv2d(5, 7, 3, stride=2, padding=1)
    layer = TuckerConv2d(conv, (7, 5, 9))
    core, (w_n, w_c, w_d) = hooi(conv.weight.detach().double().numpy())
    layer.set_factors(core, w_n, w_c, w_d)
    layer.bias.data.copy_(conv.bias.data)
    x = torch.randn(3, 5, 11, 11)
    torch.testing.assert_close(layer.kernel(), conv.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.realize()(x), conv(x), rtol=1e-5, atol=1e-5)


def test_tucker_conv_counts_realization_and_naive_sum_agree():
    conv = nn.Conv2d(6, 8, 3, padding=1)
    layer = TuckerConv2d(conv, (3, 2, 4))
    assert sum(p.numel() for p in layer.parameters()) == tucker_conv_params(
        8, 6, 9, (3, 2, 4), True
    )
    x = torch.randn(2, 6, 7, 7)
    torch.testing.assert_close(layer.realize()(x), layer(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(naive_forward(layer, x), layer(x), rtol=1e-4, atol=1e-5)
    model = tuckerize(nn.Sequential(conv, nn.ReLU()), {"0": (3, 2, 4)})
    plain = realize(model)
    assert not any(isinstance(m, TuckerConv2d) for m in plain.modules())
    torch.testing.assert_close(plain(x), model(x), rtol=1e-5, atol=1e-5)


def test_hooi_ranks_recover_a_planted_multilinear_rank():
    g = torch.Generator().manual_seed(4)
    core = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    w_n = torch.randn(9, 2, generator=g, dtype=torch.float64)
    w_c = torch.randn(7, 3, generator=g, dtype=torch.float64)
    w_d = torch.randn(9, 4, generator=g, dtype=torch.float64)
    kernel = torch.einsum("pqr,np,cq,sr->ncs", core, w_n, w_c, w_d).reshape(9, 7, 3, 3)
    spectra = hooi_spectra(kernel.numpy())
    assert hooi_ranks(spectra, 0.9999) == (2, 3, 4)
    # orthonormal HOOI factors: their own singular values are all one, whatever the kernel
    assert all(np.allclose(s, 1.0) for s in spectra["factor"])
