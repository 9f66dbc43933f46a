"""LoRITa on convolutions and attention: structure and exact collapse."""

import pytest
import torch
from torch import nn

from lowrank.methods.lorita import FactorizedConv2d, FactorizedLinear, collapse, lorita
from lowrank.models.registry import build


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as the studies' jobs use: tiny models do not gain from a second, and
    on a shared CPU two threads wait on each other (measured 4-8x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "geometry",
    [
        dict(kernel_size=3, padding=1),
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=5, padding=0, dilation=2),
        dict(kernel_size=1, stride=2),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_collapse_is_exact(n, geometry, bias):
    torch.manual_seed(n)
    layer = FactorizedConv2d(nn.Conv2d(3, 6, bias=bias, **geometry), n)
    if bias and n > 1:
        nn.init.normal_(layer.factors[-1].bias)
    plain = layer.collapse()
    assert type(plain) is nn.Conv2d and plain.weight.shape == layer.factors[0].weight.shape
    x = torch.randn(4, 3, 13, 13)
    torch.testing.assert_close(plain(x), layer(x), rtol=1e-5, atol=1e-5)
    matrix = layer.factors[0].weight.double().reshape(6, -1)
    for f in layer.factors[1:]:
        matrix = f.weight.double()[:, :, 0, 0] @ matrix
    torch.testing.assert_close(layer.product().reshape(6, -1), matrix)


def test_conv_factors_are_kxk_then_square_1x1_with_bias_on_the_last():
    layer = FactorizedConv2d(nn.Conv2d(4, 8, 3, padding=1), 3)
    shapes = [tuple(f.weight.shape) for f in layer.factors]
    assert shapes == [(8, 4, 3, 3), (8, 8, 1, 1), (8, 8, 1, 1)]
    assert [f.bias is not None for f in layer.factors] == [False, False, True]


@pytest.mark.parametrize(
    "name,kw",
    [
        ("vgg13", dict(width=1 / 16)),
        ("resnet18", dict(width=1 / 16)),
        ("resnet20", dict(width=0.25)),
        ("vgg16", dict(width=1 / 16, in_channels=1)),
        ("vit", dict(width=1 / 16, depth=2, heads=2)),
    ],
)
def test_factorized_models_collapse_to_the_same_function(name, kw):
    torch.manual_seed(0)
    base = build(name, **kw)
    model = lorita(base, 3)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d | nn.LayerNorm)]
    assert len(norms) == sum(isinstance(m, nn.BatchNorm2d | nn.LayerNorm) for m in base.modules())
    layers = [m for m in base.modules() if type(m) in (nn.Conv2d, nn.Linear)]
    factorized = [m for m in model.modules() if isinstance(m, FactorizedConv2d | FactorizedLinear)]
    assert len(factorized) == len(layers)
    with torch.no_grad():  # non-trivial normalization statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    dense = collapse(model).eval()
    assert not any(isinstance(m, FactorizedConv2d | FactorizedLinear) for m in dense.modules())
    assert [type(m) for m in dense.modules()] == [type(m) for m in base.modules()]
    x = torch.rand(8, kw.get("in_channels", 3), 32, 32)
    torch.testing.assert_close(dense(x), model(x), rtol=1e-4, atol=1e-4)


def test_vit_attention_projections_are_factorized_separately():
    model = lorita(build("vit", width=1 / 16, depth=1, heads=2), 2)
    attn = model.blocks[0].attn
    for proj in (attn.to_q, attn.to_k, attn.to_v, attn.to_out):
        assert isinstance(proj, FactorizedLinear) and len(proj.factors) == 2
    assert isinstance(model.blocks[0].mlp.fc1, FactorizedLinear)
    assert type(attn.norm) is nn.LayerNorm
