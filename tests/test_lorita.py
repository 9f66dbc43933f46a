import pytest
import torch
from torch import nn

from lowrank.methods.lorita import FactorizedLinear, collapse, lorita
from lowrank.models.fcn import fcn


@pytest.mark.parametrize("shape", [(7, 5), (5, 7)])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_collapse_equals_product_of_factors(n, shape):
    torch.manual_seed(0)
    layer = FactorizedLinear(*shape, n)
    expected = layer.factors[0].weight.double()
    for f in layer.factors[1:]:
        expected = f.weight.double() @ expected
    plain = layer.collapse()
    assert type(plain) is nn.Linear
    torch.testing.assert_close(plain.weight.double(), expected.float().double())
    torch.testing.assert_close(plain.bias, layer.factors[-1].bias)
    x = torch.randn(11, shape[0])
    torch.testing.assert_close(plain(x), layer(x), rtol=1e-5, atol=1e-5)


def test_factor_shapes_and_bias_only_on_last():
    """Inner dimension min(in, out): squares on the output side when out <= in."""
    layer = FactorizedLinear(784, 500, 3)
    shapes = [tuple(f.weight.shape) for f in layer.factors]
    assert shapes == [(500, 784), (500, 500), (500, 500)]
    assert [f.bias is not None for f in layer.factors] == [False, False, True]
    wide = FactorizedLinear(5, 7, 3)
    assert [tuple(f.weight.shape) for f in wide.factors] == [(5, 5), (5, 5), (7, 5)]
    assert [f.bias is not None for f in wide.factors] == [False, False, True]
    head = FactorizedLinear(500, 10, 2)
    assert [tuple(f.weight.shape) for f in head.factors] == [(10, 500), (10, 10)]


def test_lorita_replaces_every_linear_and_collapse_restores_outputs():
    torch.manual_seed(1)
    model = lorita(fcn(6, 32), 3).eval()
    assert sum(isinstance(m, FactorizedLinear) for m in model.modules()) == 6
    assert not any(type(m) is nn.Linear for m in model.modules() if not _inside_factor(model, m))
    dense = collapse(model)
    assert sum(type(m) is nn.Linear for m in dense.modules()) == 6
    assert not any(isinstance(m, FactorizedLinear) for m in dense.modules())
    x = torch.rand(64, 1, 28, 28)
    torch.testing.assert_close(dense(x), model(x), rtol=1e-4, atol=1e-4)


def _inside_factor(model, module):
    return any(
        module is f for m in model.modules() if isinstance(m, FactorizedLinear) for f in m.factors
    )


def test_lorita_n1_is_the_plain_model_and_factors_are_fresh():
    torch.manual_seed(2)
    base = fcn(6, 16)
    same = lorita(base, 1)
    assert all(type(m) is type(b) for m, b in zip(same.modules(), base.modules(), strict=True))
    factorized = lorita(base, 2)
    first = factorized[1]
    assert isinstance(first, FactorizedLinear)
    # randomly initialized, not split from the given weights
    assert not torch.allclose(first.collapse().weight, base[1].weight)
