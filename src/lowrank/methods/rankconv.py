"""Rank-constrained convolution (seed 000): every KxK kernel slice trained inside a rank-N space.

Each slice W[o, i] (a K x K matrix, one per output/input channel pair) is stored as a sum of
N outer products, W[o, i] = sum_n u[o, i, :, n] v[o, i, :, n]^T, so the slice has matrix rank at
most N by construction and the layer trains 2*N*K numbers per slice instead of K^2. The dense
kernel is rebuilt with one einsum on every forward pass and handed to the ordinary
convolution, so the layer runs at the speed of nn.Conv2d plus a tiny einsum, and autograd
differentiates through the einsum into the factors (what the slides call "utilizing PyTorch's
auto-gradients").

Initialization (the slides say only that they "manually deal with proper initialization"): the
factors are normal with a variance chosen so the rebuilt kernel has the same per-entry
variance as PyTorch's default Conv2d initialization, Var = 1 / (3 fan_in). With u, v
independent, zero-mean, Var(u) = Var(v) = s^2, an entry of the sum of N products has variance
N s^4, hence s^2 = sqrt(1 / (3 fan_in N)). Ranks therefore start at the same signal scale as
the dense baseline they are compared with.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RankConv2d(nn.Module):
    """A Conv2d whose KxK kernel slices are sums of `rank` outer products (stride 1)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        rank: int,
        padding: int | str = "same",
        bias: bool = True,
    ):
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.rank, self.padding = kernel_size, rank, padding
        shape = (out_channels, in_channels, kernel_size, rank)
        self.u = nn.Parameter(torch.empty(shape))
        self.v = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        fan_in = self.in_channels * self.kernel_size**2
        std = (1.0 / (3.0 * fan_in * self.rank)) ** 0.25
        nn.init.normal_(self.u, std=std)
        nn.init.normal_(self.v, std=std)
        if self.bias is not None:  # nn.Conv2d's default bias initialization
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def weight(self) -> torch.Tensor:
        """The dense (out, in, K, K) kernel: one einsum over the rank index."""
        return torch.einsum("oikn,oiln->oikl", self.u, self.v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, padding=self.padding)

    @torch.no_grad()
    def set_from_dense(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        """Best rank-N fit of a dense kernel, slice by slice (truncated SVD, Eckart-Young).

        With rank == kernel_size the fit is exact: any dense kernel is representable.
        """
        u, s, vh = torch.linalg.svd(weight.double())  # batched over (out, in)
        root = s[..., : self.rank].sqrt()
        self.u.copy_((u[..., : self.rank] * root.unsqueeze(-2)).to(self.u.dtype))
        self.v.copy_((vh[..., : self.rank, :].transpose(-1, -2) * root.unsqueeze(-2)).to(self.v))
        if bias is not None and self.bias is not None:
            self.bias.copy_(bias)

    def to_conv2d(self) -> nn.Conv2d:
        """The equivalent plain convolution ("inference with efficient weights")."""
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            padding=self.padding,
            bias=self.bias is not None,
            dtype=self.u.dtype,
            device=self.u.device,
        )
        with torch.no_grad():
            conv.weight.copy_(self.weight())
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"rank={self.rank}, padding={self.padding}, bias={self.bias is not None}"
        )


def conv_parameters(kernel_size: int, rank: int | None) -> int:
    """Trainable numbers per KxK slice: K^2 dense, 2*N*K at rank N (the slides' O(K^2) -> O(K))."""
    return kernel_size**2 if rank is None else 2 * rank * kernel_size


def make_conv(
    in_channels: int, out_channels: int, kernel_size: int, rank: int | None, bias: bool = True
) -> nn.Module:
    """PyTorch's default convolution for rank None (the baseline), else a RankConv2d."""
    if rank is None:
        return nn.Conv2d(in_channels, out_channels, kernel_size, padding="same", bias=bias)
    return RankConv2d(in_channels, out_channels, kernel_size, rank, padding="same", bias=bias)
