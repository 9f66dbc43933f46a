"""Truncation of convolutions and attention: exact at 100%, real thin layers, GSVT pools."""

import pytest
import torch
from torch import nn

from lowrank.measure.analytic import analytic
from lowrank.measure.flops import ptflops_count
from lowrank.methods.lorita import collapse, lorita
from lowrank.methods.truncation import (
    gsvt_ranks,
    layer_svds,
    low_rank_conv,
    lsvt_ranks,
    truncate,
)
from lowrank.models.registry import build


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as the studies' jobs use: tiny models do not gain from a second, and
    on a shared CPU two threads wait on each other (measured 4-8x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


MODELS = [
    ("vgg16", dict(width=1 / 16, in_channels=1)),
    ("resnet20", dict(width=0.25)),
    ("resnet18", dict(width=1 / 16)),
    ("vit", dict(width=1 / 16, depth=2, heads=2)),
]


def trained_like(name, kw):
    torch.manual_seed(0)
    model = collapse(lorita(build(name, **kw), 2))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("name,kw", MODELS)
@pytest.mark.parametrize("ranker", [lsvt_ranks, gsvt_ranks])
def test_full_truncation_reproduces_outputs(name, kw, ranker):
    model = trained_like(name, kw)
    svds = layer_svds(model)
    ranks = ranker(svds, 1.0)
    assert ranks == {d.name: d.full_rank for d in svds}
    x = torch.rand(6, kw.get("in_channels", 3), 32, 32)
    torch.testing.assert_close(
        truncate(model, svds, ranks).eval()(x), model(x), rtol=1e-4, atol=1e-4
    )


def test_conv_svd_is_of_the_mode4_unfolding_and_pools_are_separate():
    model = trained_like("vit", dict(width=1 / 16, depth=1, heads=2))
    pools = {d.name: d.pool for d in layer_svds(model)}
    assert pools["blocks.0.attn.to_q"] == "attention"
    assert pools["blocks.0.mlp.fc1"] == "linear" and pools["head"] == "linear"
    cnn = trained_like("resnet20", dict(width=0.25))
    svds = {d.name: d for d in layer_svds(cnn)}
    conv = cnn.get_submodule("layers.1.0.conv1")  # 4 -> 8 channels, 3x3
    assert svds["layers.1.0.conv1"].full_rank == min(8, 4 * 9) and svds["fc"].pool == "linear"
    u, s, vh = svds["layers.1.0.conv1"].u, svds["layers.1.0.conv1"].s, svds["layers.1.0.conv1"].vh
    torch.testing.assert_close((u * s @ vh).float(), conv.weight.reshape(8, -1))


def test_truncated_conv_is_kxk_to_r_then_1x1_with_the_right_macs():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3, stride=2, padding=1)
    model = nn.Sequential(conv)
    svd = layer_svds(model)[0]
    thin = low_rank_conv(conv, svd, 4)  # 4 * (144 + 32) < 32 * 144
    assert isinstance(thin, nn.Sequential)
    first, second = thin
    assert (first.in_channels, first.out_channels, first.kernel_size, first.stride) == (
        16,
        4,
        (3, 3),
        (2, 2),
    )
    assert (second.out_channels, second.kernel_size, second.bias is not None) == (32, (1, 1), True)
    x = torch.rand(2, 16, 15, 15)
    macs, params = ptflops_count(thin, (16, 15, 15))
    pixels = 8 * 8
    assert macs == 4 * 16 * 9 * pixels + 32 * 4 * pixels + 32 * pixels
    assert params == 4 * 16 * 9 + 32 * 4 + 32
    w = second.weight[:, :, 0, 0].double() @ first.weight.double().reshape(4, -1)
    assert torch.linalg.matrix_rank(w).item() == 4
    ref = nn.functional.conv2d(
        x,
        (svd.u[:, :4] * svd.s[:4] @ svd.vh[:4]).float().reshape(conv.weight.shape),
        conv.bias,
        stride=2,
        padding=1,
    )
    torch.testing.assert_close(thin(x), ref, rtol=1e-5, atol=1e-5)
    dense = low_rank_conv(conv, svd, 30)  # 30 * 176 > 4608: stays one dense conv
    assert type(dense) is nn.Conv2d
    assert torch.linalg.matrix_rank(dense.weight.reshape(32, -1).double(), rtol=1e-5) == 30


def test_gsvt_normalizes_conv_layers_by_their_largest_value():
    # Two convolutions with identical spectra shapes but scales 1 and 1000 (as BatchNorm
    # allows): normalized pooling keeps the same count in each; raw pooling would not.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3))
    with torch.no_grad():
        model[2].weight.copy_(1000 * model[0].weight.repeat(1, 2, 1, 1)[:, :8])
    svds = layer_svds(model)
    ranks = gsvt_ranks(svds, 0.5)
    assert ranks["0"] >= 2 and ranks["2"] >= 2
    assert ranks["0"] + ranks["2"] == 8


def test_truncated_model_macs_shrink_with_fraction():
    model = trained_like("vgg16", dict(width=1 / 16, in_channels=1))
    svds = layer_svds(model)
    counts = [
        ptflops_count(truncate(model, svds, lsvt_ranks(svds, f)), (1, 32, 32))[0]
        for f in (0.1, 0.3, 1.0)
    ]
    assert counts[0] < counts[1] <= counts[2] == analytic("vgg16", width=1 / 16, in_channels=1).macs
