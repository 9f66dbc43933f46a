"""Singular value truncation of trained weights: LSVT (per layer) and GSVT (global).

The compressed model is a real, smaller network: a layer truncated to rank r becomes two thin
Linear layers (in -> r -> out) whenever r * (in + out) < in * out, and otherwise stays one
dense Linear holding the rank-r matrix. FLOPs and parameters are then counted on that model.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class LayerSVD:
    """SVD of one Linear weight, in float64 (W = U diag(S) Vh)."""

    name: str
    u: torch.Tensor
    s: torch.Tensor
    vh: torch.Tensor

    @property
    def full_rank(self) -> int:
        return int(self.s.numel())


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """Every plain nn.Linear in forward order (collapse LoRITa models first)."""
    return [(n, m) for n, m in model.named_modules() if type(m) is nn.Linear]


@torch.no_grad()
def layer_svds(model: nn.Module) -> list[LayerSVD]:
    out = []
    for name, layer in linear_layers(model):
        u, s, vh = torch.linalg.svd(layer.weight.double(), full_matrices=False)
        out.append(LayerSVD(name, u, s, vh))
    return out


def lsvt_ranks(svds: list[LayerSVD], fraction: float) -> dict[str, int]:
    """Local truncation: each layer keeps floor(fraction * rank) values, at least 1."""
    return {
        d.name: max(1, min(d.full_rank, math.floor(fraction * d.full_rank + 1e-9))) for d in svds
    }


def gsvt_ranks(svds: list[LayerSVD], fraction: float) -> dict[str, int]:
    """Global truncation: keep the largest round(fraction * total) of all pooled values.

    Raw (unnormalized) singular values are pooled, as in the paper's FCN experiments. Every
    layer keeps at least one value, so the network stays connected.
    """
    values = np.concatenate([d.s.numpy() for d in svds])
    owners = np.concatenate([np.full(d.full_rank, i) for i, d in enumerate(svds)])
    keep = max(1, min(values.size, round(fraction * values.size)))
    top = np.argsort(-values, kind="stable")[:keep]
    counts = np.bincount(owners[top], minlength=len(svds))
    return {d.name: max(1, int(c)) for d, c in zip(svds, counts, strict=True)}


def retained_fraction(svds: list[LayerSVD], ranks: dict[str, int]) -> float:
    """The paper's x-axis: retained / total singular values per matrix, averaged over matrices."""
    return float(np.mean([ranks[d.name] / d.full_rank for d in svds]))


@torch.no_grad()
def low_rank_linear(layer: nn.Linear, svd: LayerSVD, rank: int) -> nn.Module:
    """The rank-`rank` replacement of `layer`: two thin layers if smaller, else one dense."""
    out_f, in_f = layer.weight.shape
    u, s, vh = svd.u[:, :rank], svd.s[:rank], svd.vh[:rank]
    dtype = layer.weight.dtype
    has_bias = layer.bias is not None
    if rank * (in_f + out_f) < in_f * out_f:
        root = s.sqrt()
        first = nn.Linear(in_f, rank, bias=False)
        second = nn.Linear(rank, out_f, bias=has_bias)
        first.weight.copy_((root[:, None] * vh).to(dtype))
        second.weight.copy_((u * root[None, :]).to(dtype))
        if has_bias:
            second.bias.copy_(layer.bias)
        return nn.Sequential(first, second)
    dense = nn.Linear(in_f, out_f, bias=has_bias)
    dense.weight.copy_((u * s[None, :] @ vh).to(dtype))
    if has_bias:
        dense.bias.copy_(layer.bias)
    return dense


def truncate(model: nn.Module, svds: list[LayerSVD], ranks: dict[str, int]) -> nn.Module:
    """A copy of `model` with every Linear replaced by its truncated version."""
    out = copy.deepcopy(model)
    by_name = {d.name: d for d in svds}
    for name, layer in linear_layers(out):
        parent_name, _, attr = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        setattr(parent, attr, low_rank_linear(layer, by_name[name], ranks[name]))
    return out
