"""The course project's Tucker-factorized convolution (seed 003), trained from scratch.

The kernel W (N x C x d x d) is seen as a 3-way tensor N x C x d^2 (spatial dims flattened)
and parameterized as [[G; W_N, W_C, W_D]] with G (N' x C' x D'), W_N (N x N'), W_C (C x C'),
W_D (d^2 x D'): W[n, c, s] = sum_{p,q,r} G[p, q, r] W_N[n, p] W_C[c, q] W_D[s, r].
Training rebuilds W from the factors each step and convolves with it; autograd supplies the
gradients the project derived by hand. `realize` turns a trained layer into standard
convolutions (1x1 C -> C', d x d core C' -> N' with kernel G x_3 W_D, 1x1 N' -> N) so that
ptflops counts it and CPU timing measures an ordinary inference path.

Ranks follow the project: a full HOOI of the trained dense kernel, then the singular values
of its factors. HOOI factors are orthonormal, so their own singular values are all 1 and say
nothing; what carries the "relative sizes" the project compares is each factor scaled by the
core (W'_n G_(n)), whose singular values are the n-mode singular values of the kernel. Both
are recorded; ranks come from the second (`hooi_ranks`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from tensorly.decomposition import tucker
from torch import nn

from lowrank.methods.tucker import energy_rank, replace_modules


class TuckerConv2d(nn.Module):
    """A Conv2d whose kernel is [[G; W_N, W_C, W_D]] with the spatial dims flattened."""

    def __init__(self, conv: nn.Conv2d, ranks: tuple[int, int, int]):
        super().__init__()
        if conv.groups != 1:
            raise ValueError("the Tucker-factorized convolution needs groups == 1")
        n, c, kh, kw = conv.weight.shape
        d2 = kh * kw
        self.ranks = (min(ranks[0], n), min(ranks[1], c), min(ranks[2], d2))
        self.kernel_size, self.stride = conv.kernel_size, conv.stride
        self.padding, self.dilation = conv.padding, conv.dilation
        if conv.padding_mode != "zeros":
            raise ValueError("the Tucker-factorized convolution supports zero padding only")
        p, q, r = self.ranks
        self.w_n = nn.Parameter(torch.empty(n, p))
        self.w_c = nn.Parameter(torch.empty(c, q))
        self.w_d = nn.Parameter(torch.empty(d2, r))
        self.core = nn.Parameter(torch.empty(p, q, r))
        self.bias = nn.Parameter(torch.empty(n)) if conv.bias is not None else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Orthonormal factors and a Gaussian core scaled so that the kernel's squared norm
        matches torch's default Conv2d init (variance 1 / (3 fan_in) per entry): with
        orthonormal factors, ||W|| = ||G||."""
        for factor in (self.w_n, self.w_c, self.w_d):
            nn.init.orthogonal_(factor)
        n, c, d2 = self.w_n.shape[0], self.w_c.shape[0], self.w_d.shape[0]
        total = n * c * d2 / (3 * c * d2)
        nn.init.normal_(self.core, std=math.sqrt(total / self.core.numel()))
        if self.bias is not None:
            bound = 1 / math.sqrt(c * d2)
            nn.init.uniform_(self.bias, -bound, bound)

    def kernel(self) -> torch.Tensor:
        w = torch.einsum("pqr,np,cq,sr->ncs", self.core, self.w_n, self.w_c, self.w_d)
        return w.reshape(w.shape[0], w.shape[1], *self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel(), self.bias, self.stride, self.padding, self.dilation)

    @torch.no_grad()
    def set_factors(self, core, w_n, w_c, w_d) -> None:
        for param, value in zip(
            (self.core, self.w_n, self.w_c, self.w_d), (core, w_n, w_c, w_d), strict=True
        ):
            param.copy_(torch.as_tensor(np.asarray(value), dtype=param.dtype))

    @torch.no_grad()
    def realize(self) -> nn.Sequential:
        """Standard convolutions computing exactly this layer (for ptflops and timing)."""
        n, c = self.w_n.shape[0], self.w_c.shape[0]
        p, q, _ = self.ranks
        first = nn.Conv2d(c, q, 1, bias=False)
        middle = nn.Conv2d(
            q, p, self.kernel_size, self.stride, self.padding, self.dilation, bias=False
        )
        last = nn.Conv2d(p, n, 1, bias=self.bias is not None)
        first.weight.copy_(self.w_c.T[:, :, None, None])
        middle.weight.copy_(
            torch.einsum("pqr,sr->pqs", self.core, self.w_d).reshape(p, q, *self.kernel_size)
        )
        last.weight.copy_(self.w_n[:, :, None, None])
        if self.bias is not None:
            last.bias.copy_(self.bias)
        return nn.Sequential(first, middle, last)


def tuckerize(model: nn.Module, ranks: dict[str, tuple[int, int, int]]) -> nn.Module:
    """A copy of `model` with the named convolutions replaced by freshly initialized
    Tucker-factorized ones (for training from scratch)."""
    modules = dict(model.named_modules())
    return replace_modules(model, {n: TuckerConv2d(modules[n], r) for n, r in ranks.items()})


def realize(model: nn.Module) -> nn.Module:
    """A copy of `model` with every TuckerConv2d replaced by its standard convolutions."""
    new = {n: m.realize() for n, m in model.named_modules() if isinstance(m, TuckerConv2d)}
    return replace_modules(model, new)


def hooi(weight: np.ndarray, ranks: tuple[int, int, int] | None = None):
    """HOOI (tensorly `tucker`, SVD init) of an N x C x d x d kernel as N x C x d^2."""
    w3 = weight.reshape(weight.shape[0], weight.shape[1], -1)
    # a mode's rank cannot exceed the product of the other two sizes (e.g. D' <= N C)
    most = [min(size, w3.size // size) for size in w3.shape]
    ranks = [min(r, m) for r, m in zip(ranks or most, most, strict=True)]
    core, factors = tucker(w3, rank=ranks, init="svd", n_iter_max=100, tol=1e-8)
    return np.asarray(core), [np.asarray(f) for f in factors]


def hooi_spectra(weight: np.ndarray) -> dict[str, list[list[float]]]:
    """Per mode (N, C, D): singular values of the HOOI factor itself and of the factor scaled
    by the core (the n-mode singular values, which the ranks are chosen from)."""
    core, factors = hooi(weight)
    out: dict[str, list[list[float]]] = {"factor": [], "scaled": []}
    for mode, factor in enumerate(factors):
        unfolded = np.moveaxis(core, mode, 0).reshape(core.shape[mode], -1)
        out["factor"].append(np.linalg.svd(factor, compute_uv=False).tolist())
        out["scaled"].append(np.linalg.svd(factor @ unfolded, compute_uv=False).tolist())
    return out


def hooi_ranks(spectra: dict[str, list[list[float]]], energy: float) -> tuple[int, int, int]:
    """(N', C', D'): per mode, the number of dominant singular values holding `energy`."""
    return tuple(energy_rank(np.asarray(s), energy) for s in spectra["scaled"])  # type: ignore[return-value]


def tucker_conv_params(n: int, c: int, d2: int, ranks: tuple[int, int, int], bias: bool) -> int:
    """The project's count N'C'D' + N N' + C C' + d^2 D' (plus the bias)."""
    p, q, r = ranks
    return p * q * r + n * p + c * q + d2 * r + (n if bias else 0)


def rank1_kernels(layer: TuckerConv2d) -> torch.Tensor:
    """The N'C'D' rank-1 kernels g_pqr (w_n,p o w_c,q o w_d,r), shape (terms, N, C, d, d)."""
    n, c = layer.w_n.shape[0], layer.w_c.shape[0]
    outer = torch.einsum("pqr,np,cq,sr->pqrncs", layer.core, layer.w_n, layer.w_c, layer.w_d)
    return outer.reshape(-1, n, c, *layer.kernel_size)


def naive_forward(layer: TuckerConv2d, x: torch.Tensor, kernels: torch.Tensor | None = None):
    """The project's evaluation: a sum over N'C'D' rank-1 kernels, one convolution each
    (`kernels` from `rank1_kernels`, precomputed once as an inference implementation would)."""
    kernels = rank1_kernels(layer) if kernels is None else kernels
    out = None
    for kernel in kernels:
        term = F.conv2d(x, kernel, None, layer.stride, layer.padding, layer.dilation)
        out = term if out is None else out + term
    return out if layer.bias is None else out + layer.bias[None, :, None, None]
