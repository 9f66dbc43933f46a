"""CNN/ViT models: shapes, ptflops against the analytic count (dense, LoRITa-collapsed,
truncated), and the dense ResNet20/VGG16 that LoRITa's Tables 3-4 imply."""

import io
import math

import pytest
import torch
from ptflops import get_model_complexity_info

from lowrank.measure.analytic import analytic
from lowrank.measure.flops import ptflops_count
from lowrank.methods.lorita import collapse, lorita
from lowrank.methods.truncation import gsvt_ranks, layer_svds, lsvt_ranks, truncate
from lowrank.models.registry import build


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as the studies' jobs use: tiny models do not gain from a second, and
    on a shared CPU two threads wait on each other (measured 4-8x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = [
    ("vgg13", dict(width=1 / 16)),
    ("vgg16", dict(width=1 / 16, in_channels=1)),
    ("resnet18", dict(width=1 / 16, num_classes=7)),
    ("resnet20", dict(width=0.25)),
    ("resnet20", dict(width=0.25, shortcut="A")),
    ("vit", dict(width=1 / 16, depth=2, heads=2, in_channels=1)),
    ("vit", dict(width=1 / 8, depth=1, heads=4, patch_size=8, num_classes=100)),
]


def aten_macs(model, shape):
    macs, _ = get_model_complexity_info(
        model,
        shape,
        as_strings=False,
        print_per_layer_stat=False,
        backend="aten",
        ost=io.StringIO(),
    )
    return macs


@pytest.mark.parametrize("name,kw", TINY)
def test_models_classify_and_ptflops_matches_the_analytic_count(name, kw):
    torch.manual_seed(0)
    shape = (kw.get("in_channels", 3), 32, 32)
    model = build(name, **kw).eval()
    assert model(torch.rand(3, *shape)).shape == (3, kw.get("num_classes", 10))
    expected = analytic(name, **kw)
    assert ptflops_count(model, shape) == (expected.macs, expected.params)
    assert aten_macs(model, shape) == expected.conv_linear_macs
    assert (expected.attention_macs > 0) == (name == "vit")  # ptflops cannot see them
    collapsed = collapse(lorita(model, 3))
    assert ptflops_count(collapsed, shape) == (expected.macs, expected.params)


@pytest.mark.parametrize("name,kw", TINY[:4] + TINY[5:6])
@pytest.mark.parametrize("method,fraction", [("LSVT", 0.1), ("GSVT", 0.4)])
def test_ptflops_matches_the_analytic_count_of_truncated_models(name, kw, method, fraction):
    torch.manual_seed(1)
    shape = (kw.get("in_channels", 3), 32, 32)
    model = collapse(lorita(build(name, **kw), 2)).eval()
    svds = layer_svds(model)
    ranks = (lsvt_ranks if method == "LSVT" else gsvt_ranks)(svds, fraction)
    compressed = truncate(model, svds, ranks)
    expected = analytic(name, ranks, **kw)
    assert ptflops_count(compressed, shape) == (expected.macs, expected.params)
    assert aten_macs(compressed, shape) == expected.conv_linear_macs
    assert expected.macs < analytic(name, **kw).macs


def implied_dense(after: float, drop_pct: float, decimals_after: int, decimals_drop: int):
    """The interval of dense values consistent with a printed after-value and drop percentage
    (each exact to half a unit of its last printed digit): dense = after / (1 - drop)."""
    da, dd = 0.5 * 10**-decimals_after, 0.5 * 10**-decimals_drop
    return (after - da) / (1 - (drop_pct - dd) / 100), (after + da) / (1 - (drop_pct + dd) / 100)


def intersect(*intervals):
    lo, hi = max(i[0] for i in intervals), min(i[1] for i in intervals)
    assert lo <= hi, "the paper's rows contradict each other"
    return lo, hi


def test_dense_resnet20_matches_table3():
    # Table 3 LoRITa rows: 18.47 MFLOPs at 54.7% drop, 19.09 at 53.22%; 0.11 M params at 61%,
    # 0.12 M at 55.8%. Both rows together pin the dense model.
    flops = intersect(implied_dense(18.47, 54.7, 2, 1), implied_dense(19.09, 53.22, 2, 2))
    params = intersect(implied_dense(0.11, 61, 2, 0), implied_dense(0.12, 55.8, 2, 1))
    b, a = analytic("resnet20"), analytic("resnet20", shortcut="A")
    assert flops[0] <= b.conv_linear_macs / 1e6 <= flops[1]  # option B, conv + linear count
    assert not flops[0] <= a.conv_linear_macs / 1e6 <= flops[1]  # option A cannot match
    for count in (a.macs, b.macs):  # nor any count with BatchNorm and ReLU
        assert not flops[0] <= count / 1e6 <= flops[1]
    assert params[0] <= b.params / 1e6 <= params[1]
    assert math.isclose(b.params, 272_474)


def test_dense_vgg16_matches_table4():
    flops = intersect(implied_dense(47.73, 84.8, 2, 1), implied_dense(50.21, 84.03, 2, 2))
    params = intersect(implied_dense(0.79, 94.6, 2, 1), implied_dense(0.94, 93.64, 2, 2))
    dense = analytic("vgg16")
    assert flops[0] <= dense.macs / 1e6 <= flops[1]  # the full ptflops (pytorch) count
    assert not flops[0] <= dense.conv_linear_macs / 1e6 <= flops[1]
    assert params[0] <= dense.params / 1e6 <= params[1]
    assert (dense.macs, dense.params) == (314_432_522, 14_728_266)


def test_vit_width_keeps_heads_and_position_embedding_valid():
    model = build("vit", width=0.1, depth=1, heads=8)
    dim = model.patch_embed.out_features
    assert dim % 8 == 0 and dim % 4 == 0
    assert model.blocks[0].attn.dim_head * 8 == dim
