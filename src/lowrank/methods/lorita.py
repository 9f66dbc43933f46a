"""LoRITa: every weight as a product of N factors, trained with weight decay.

Each Linear(in, out) becomes N factors W = W_N ... W_1 whose inner dimension is min(in, out):
the original shape and N-1 square layers (see FactorizedLinear), all randomly initialized. Applying
the factors one after another is cheaper than forming the product when the batch is smaller
than the width. `collapse` multiplies the factors back into one plain Linear, exactly.

Each KxK Conv2d(Cin, Cout) becomes the same KxK convolution without bias followed by N-1
1x1 convolutions Cout -> Cout (the bias on the last): the paper's factorization of the
mode-4 unfolded kernel W (Cout x Cin*K*K) as W_N ... W_2 W_1 with square W_2..W_N. A 1x1
convolution is the same linear map at every pixel and the padding zeros stay zero, so
`collapse` turns the chain back into one KxK convolution with kernel W_N...W_1, exactly.
BatchNorm and LayerNorm are never factorized (they are not in the rewritten types).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class FactorizedLinear(nn.Module):
    """A Linear layer stored as N factors whose inner dimension is min(in, out); the bias
    sits on the last factor.

    With out <= in (most layers: 784 -> 500, the 500 -> 10 head) the first factor has the
    layer's own shape and N-1 square out x out factors follow, as FactorizedConv2d does with
    Cout x Cout; with in < out, N-1 square in x in factors come first. Any inner dimension of
    at least min(in, out) keeps every rank reachable, and this one is the cheapest: FCN-10
    with N = 3 trains with 16% fewer MACs than with in x in squares everywhere (the head's
    squares are 10 x 10, not 500 x 500)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n_factors: int,
        bias: bool = True,
        init_std: float | None = None,
    ):
        super().__init__()
        if n_factors < 1:
            raise ValueError("n_factors must be >= 1")
        self.in_features, self.out_features = in_features, out_features
        plain = nn.Linear(in_features, out_features, bias=bias)  # nn.Linear's own init
        if init_std is not None:  # the scale of the layer it replaces, freshly drawn
            with torch.no_grad():
                plain.weight.normal_(0.0, init_std)
        inner = min(in_features, out_features)
        squares = [nn.Linear(inner, inner, bias=False) for _ in range(n_factors - 1)]
        for square in squares:  # orthogonal: the chain's product has W_1's singular values
            nn.init.orthogonal_(square.weight)
        if not squares:
            factors = [plain]
        elif out_features <= in_features:
            first = nn.Linear(in_features, out_features, bias=False)
            with torch.no_grad():
                first.weight.copy_(plain.weight)
            squares[-1].bias = plain.bias
            factors = [first, *squares]
        else:
            factors = [*squares, plain]
        self.factors = nn.ModuleList(factors)

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


class FactorizedConv2d(nn.Module):
    """A Conv2d stored as a KxK convolution and N-1 square 1x1 convolutions after it."""

    def __init__(self, conv: nn.Conv2d, n_factors: int):
        super().__init__()
        if n_factors < 1:
            raise ValueError("n_factors must be >= 1")
        if conv.groups != 1:
            raise ValueError("LoRITa factorizes ungrouped convolutions only")
        cout = conv.out_channels
        has_bias = conv.bias is not None
        first = nn.Conv2d(
            conv.in_channels,
            cout,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            bias=has_bias and n_factors == 1,
            padding_mode=conv.padding_mode,
        )
        squares = [nn.Conv2d(cout, cout, 1, bias=False) for _ in range(n_factors - 1)]
        for square in squares:  # orthogonal, like the Linear squares
            nn.init.orthogonal_(square.weight)
        if squares and has_bias:
            squares[-1].bias = nn.Parameter(torch.zeros(cout))
        self.factors = nn.ModuleList([first, *squares])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for factor in self.factors:
            x = factor(x)
        return x

    @torch.no_grad()
    def product(self) -> torch.Tensor:
        """The end-to-end kernel (Cout, Cin, K, K), from W_N...W_1 in float64."""
        first = self.factors[0].weight.double()
        matrix = first.reshape(first.shape[0], -1)
        for factor in self.factors[1:]:
            matrix = factor.weight.double()[:, :, 0, 0] @ matrix
        return matrix.reshape(first.shape)

    @torch.no_grad()
    def collapse(self) -> nn.Conv2d:
        first, last = self.factors[0], self.factors[-1]
        conv = nn.Conv2d(
            first.in_channels,
            last.out_channels,
            first.kernel_size,
            first.stride,
            first.padding,
            first.dilation,
            bias=last.bias is not None,
            padding_mode=first.padding_mode,
        )
        conv.weight.copy_(self.product().to(first.weight.dtype))
        if last.bias is not None:
            conv.bias.copy_(last.bias)
        return conv


def _factorize(module: nn.Module, n_factors: int) -> nn.Module | None:
    if type(module) is nn.Linear:
        bias = module.bias is not None
        std = float(module.weight.detach().std()) if module.weight.numel() > 1 else None
        return FactorizedLinear(module.in_features, module.out_features, n_factors, bias, std)
    if type(module) is nn.Conv2d and module.groups == 1:
        return FactorizedConv2d(module, n_factors)
    return None


def _replace(module: nn.Module, make) -> None:
    for name, child in module.named_children():
        replacement = make(child)
        if replacement is not None:
            setattr(module, name, replacement)
        else:
            _replace(child, make)


def lorita(model: nn.Module, n_factors: int) -> nn.Module:
    """A copy of `model` with every nn.Linear and nn.Conv2d factorized into `n_factors` fresh
    factors (randomly initialized: LoRITa trains from scratch, never from given weights)."""
    out = copy.deepcopy(model)
    if n_factors == 1:
        return out
    _replace(out, lambda m: _factorize(m, n_factors))
    return out


def collapse(model: nn.Module) -> nn.Module:
    """A copy of `model` whose factorized layers are multiplied back into nn.Linear/nn.Conv2d."""
    out = copy.deepcopy(model)
    _replace(
        out,
        lambda m: m.collapse() if isinstance(m, FactorizedLinear | FactorizedConv2d) else None,
    )
    return out
