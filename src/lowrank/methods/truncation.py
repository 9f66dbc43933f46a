"""Singular value truncation of trained weights: LSVT (per layer) and GSVT (global).

Every nn.Linear and (ungrouped) nn.Conv2d is a weight matrix: a Linear's (out x in) weight, a
convolution's mode-4 unfolding (Cout x Cin*K*K), as in the paper. The compressed model is a
real, smaller network: a layer truncated to rank r becomes two thin layers whenever that has
fewer MACs (and parameters) than the dense layer, i.e. r * (in + out) < in * out with
in = Cin*K*K for a convolution, and otherwise stays one dense layer holding the rank-r matrix.
A thin Linear is Linear(in, r) -> Linear(r, out); a thin convolution is the KxK convolution to
r channels (same stride/padding) followed by a 1x1 convolution to Cout, the paper's
"convolve with the filters of V_r, then apply U_r". FLOPs and parameters are counted on that.

GSVT pools. The paper ranks convolutional and fully connected layers (CNNs), and attention
and fully connected layers (ViTs), separately. Each layer belongs to one pool: "conv" for
convolutions, "attention" for Linear layers inside a module with `gsvt_pool = "attention"`
(the ViT's Attention), "linear" otherwise; each pool keeps the same fraction of its values.
Within the conv pool each layer's singular values are divided by its largest before ranking,
because every convolution here is followed by BatchNorm, which makes the network invariant
to the kernel's scale: raw values of two BatchNorm-ed layers are not comparable (weight decay
sets their scale, not their importance), their shapes are. The linear and attention pools rank
raw values, exactly as the FCN study (and the paper's "sorting all the singular values
together") does; an FCN has only the linear pool, so its GSVT is unchanged.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lowrank.models.dims import is_thin

# Which pools rank singular values divided by each layer's largest (see the module docstring).
NORMALIZED_POOLS = frozenset({"conv"})


@dataclass(frozen=True)
class LayerSVD:
    """SVD of one weight matrix, in float64 (W = U diag(S) Vh), and the GSVT pool it is in."""

    name: str
    u: torch.Tensor
    s: torch.Tensor
    vh: torch.Tensor
    pool: str = "linear"

    @property
    def full_rank(self) -> int:
        return int(self.s.numel())


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """Every plain nn.Linear in forward order (collapse LoRITa models first)."""
    return [(n, m) for n, m in model.named_modules() if type(m) is nn.Linear]


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every plain nn.Linear and ungrouped nn.Conv2d, in module order."""
    return [
        (n, m)
        for n, m in model.named_modules()
        if type(m) is nn.Linear or (type(m) is nn.Conv2d and m.groups == 1)
    ]


def pool_of(model: nn.Module, name: str, layer: nn.Module) -> str:
    """The GSVT pool of a layer: its nearest ancestor's `gsvt_pool`, else by layer type."""
    parts = name.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        pool = getattr(model.get_submodule(".".join(parts[:depth])), "gsvt_pool", None)
        if pool:
            return pool
    return "conv" if isinstance(layer, nn.Conv2d) else "linear"


def matricize(layer: nn.Module) -> torch.Tensor:
    """The weight as a matrix: (out, in) for Linear, (Cout, Cin*K*K) for Conv2d."""
    return layer.weight.reshape(layer.weight.shape[0], -1)


@torch.no_grad()
def layer_svds(model: nn.Module) -> list[LayerSVD]:
    out = []
    for name, layer in weight_layers(model):
        u, s, vh = torch.linalg.svd(matricize(layer).double(), full_matrices=False)
        out.append(LayerSVD(name, u, s, vh, pool_of(model, name, layer)))
    return out


def lsvt_ranks(svds: list[LayerSVD], fraction: float) -> dict[str, int]:
    """Local truncation: each layer keeps floor(fraction * rank) values, at least 1."""
    return {
        d.name: max(1, min(d.full_rank, math.floor(fraction * d.full_rank + 1e-9))) for d in svds
    }


def _pool_ranks(svds: list[LayerSVD], fraction: float, normalize: bool) -> dict[str, int]:
    values = np.concatenate(
        [(d.s / d.s[0] if normalize and d.s[0] > 0 else d.s).numpy() for d in svds]
    )
    owners = np.concatenate([np.full(d.full_rank, i) for i, d in enumerate(svds)])
    keep = max(1, min(values.size, round(fraction * values.size)))
    top = np.argsort(-values, kind="stable")[:keep]
    counts = np.bincount(owners[top], minlength=len(svds))
    return {d.name: max(1, int(c)) for d, c in zip(svds, counts, strict=True)}


def gsvt_ranks(svds: list[LayerSVD], fraction: float) -> dict[str, int]:
    """Global truncation: in each pool keep the largest round(fraction * pool size) values.

    Pools and normalization as in the module docstring (an FCN: one raw pool). Every layer
    keeps at least one value, so the network stays connected.
    """
    ranks: dict[str, int] = {}
    for pool in dict.fromkeys(d.pool for d in svds):
        members = [d for d in svds if d.pool == pool]
        ranks.update(_pool_ranks(members, fraction, pool in NORMALIZED_POOLS))
    return ranks


def retained_fraction(svds: list[LayerSVD], ranks: dict[str, int]) -> float:
    """The paper's x-axis: retained / total singular values per matrix, averaged over matrices."""
    return float(np.mean([ranks[d.name] / d.full_rank for d in svds]))


def pooled_fraction(svds: list[LayerSVD], ranks: dict[str, int]) -> float:
    """Retained / total singular values of all matrices pooled (what GSVT's target sets);
    small layers weigh less here than on the paper's per-matrix axis."""
    return sum(ranks[d.name] for d in svds) / sum(d.full_rank for d in svds)


@torch.no_grad()
def low_rank_linear(layer: nn.Linear, svd: LayerSVD, rank: int) -> nn.Module:
    """The rank-`rank` replacement of `layer`: two thin layers if smaller, else one dense."""
    out_f, in_f = layer.weight.shape
    u, s, vh = svd.u[:, :rank], svd.s[:rank], svd.vh[:rank]
    dtype = layer.weight.dtype
    has_bias = layer.bias is not None
    if is_thin(in_f, out_f, rank):
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


@torch.no_grad()
def low_rank_conv(layer: nn.Conv2d, svd: LayerSVD, rank: int) -> nn.Module:
    """The rank-`rank` replacement of a convolution: KxK conv to `rank` channels then a 1x1
    conv to Cout when that is cheaper, else one dense KxK conv with the rank-r kernel."""
    cout, cin, kh, kw = layer.weight.shape
    u, s, vh = svd.u[:, :rank], svd.s[:rank], svd.vh[:rank]
    dtype = layer.weight.dtype
    has_bias = layer.bias is not None

    def kxk(channels_out: int, bias: bool) -> nn.Conv2d:  # the layer's own geometry
        return nn.Conv2d(
            cin,
            channels_out,
            (kh, kw),
            layer.stride,
            layer.padding,
            layer.dilation,
            bias=bias,
            padding_mode=layer.padding_mode,
        )

    if is_thin(cin * kh * kw, cout, rank):
        root = s.sqrt()
        first = kxk(rank, False)
        second = nn.Conv2d(rank, cout, 1, bias=has_bias)
        first.weight.copy_((root[:, None] * vh).reshape(rank, cin, kh, kw).to(dtype))
        second.weight.copy_((u * root[None, :]).reshape(cout, rank, 1, 1).to(dtype))
        if has_bias:
            second.bias.copy_(layer.bias)
        return nn.Sequential(first, second)
    dense = kxk(cout, has_bias)
    dense.weight.copy_((u * s[None, :] @ vh).reshape(cout, cin, kh, kw).to(dtype))
    if has_bias:
        dense.bias.copy_(layer.bias)
    return dense


def truncate(model: nn.Module, svds: list[LayerSVD], ranks: dict[str, int]) -> nn.Module:
    """A copy of `model` with every weight layer named in `ranks` replaced by its truncated
    version; layers not in `ranks` stay as they are."""
    out = copy.deepcopy(model)
    by_name = {d.name: d for d in svds}
    for name, layer in weight_layers(out):
        if name not in ranks:  # a layer left out of the truncation (e.g. a kept classifier)
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        make = low_rank_conv if isinstance(layer, nn.Conv2d) else low_rank_linear
        setattr(parent, attr, make(layer, by_name[name], ranks[name]))
    return out
