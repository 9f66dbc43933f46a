"""LoRITa: every weight as a product of N factors, trained with weight decay.

Each Linear(in, out) becomes N-1 bias-free square Linear(in, in) layers followed by one
Linear(in, out) of the original shape (W = W_N ... W_1), all randomly initialized. Applying
the factors one after another is cheaper than forming the product when the batch is smaller
than the width. `collapse` multiplies the factors back into one plain Linear, exactly.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class FactorizedLinear(nn.Module):
    """A Linear layer stored as N factors; the bias sits on the last one."""

    def __init__(self, in_features: int, out_features: int, n_factors: int, bias: bool = True):
        super().__init__()
        if n_factors < 1:
            raise ValueError("n_factors must be >= 1")
        self.in_features, self.out_features = in_features, out_features
        squares = [nn.Linear(in_features, in_features, bias=False) for _ in range(n_factors - 1)]
        for square in squares:  # norm-preserving in expectation, so depth does not shrink signals
            nn.init.normal_(square.weight, std=in_features**-0.5)
        self.factors = nn.ModuleList([*squares, nn.Linear(in_features, out_features, bias=bias)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for factor in self.factors:
            x = factor(x)
        return x

    @torch.no_grad()
    def product(self) -> torch.Tensor:
        """The end-to-end weight W_N ... W_1, computed in float64 for an exact collapse."""
        weight = self.factors[0].weight.double()
        for factor in self.factors[1:]:
            weight = factor.weight.double() @ weight
        return weight

    @torch.no_grad()
    def collapse(self) -> nn.Linear:
        last = self.factors[-1]
        linear = nn.Linear(self.in_features, self.out_features, bias=last.bias is not None)
        linear.weight.copy_(self.product().to(last.weight.dtype))
        if last.bias is not None:
            linear.bias.copy_(last.bias)
        return linear


def _replace(module: nn.Module, make) -> None:
    for name, child in module.named_children():
        replacement = make(child)
        if replacement is not None:
            setattr(module, name, replacement)
        else:
            _replace(child, make)


def lorita(model: nn.Module, n_factors: int) -> nn.Module:
    """A copy of `model` with every nn.Linear factorized into `n_factors` fresh factors."""
    out = copy.deepcopy(model)
    if n_factors == 1:
        return out
    _replace(
        out,
        lambda m: (
            FactorizedLinear(m.in_features, m.out_features, n_factors, m.bias is not None)
            if type(m) is nn.Linear
            else None
        ),
    )
    return out


def collapse(model: nn.Module) -> nn.Module:
    """A copy of `model` whose FactorizedLinear layers are multiplied back into nn.Linear."""
    out = copy.deepcopy(model)
    _replace(out, lambda m: m.collapse() if isinstance(m, FactorizedLinear) else None)
    return out
