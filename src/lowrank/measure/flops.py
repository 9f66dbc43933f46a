"""FLOPs (multiply-accumulates, MACs) and parameters, by ptflops and analytically.

ptflops is pinned (0.7.4) and its backend passed explicitly: the default backend changed
between releases, and the two backends count differently. Its 'pytorch' backend counts
module hooks, so only plain modules (nn.Linear, nn.BatchNorm1d, nn.ReLU) are counted: always
measure collapsed or truncated models, never wrapped ones.
Functional counting is switched off: with it on, ptflops 0.7.4 counts nn.ReLU twice (its
module hook and the patched F.relu it calls).
Convention (ptflops' pytorch backend): Linear = in*out MACs + out for the bias; ReLU = one per
element; affine BatchNorm = two per element.
"""

from __future__ import annotations

import io
import sys

from torch import nn


def _import_ptflops():
    """Import ptflops without torchvision: ptflops imports torchvision.ops only to count its
    DeformConv2d (no model here has one), and that import pulls in torch._dynamo, about 4 s
    of every short job's start-up. An already imported torchvision is left alone."""
    blocked = "torchvision" not in sys.modules
    if blocked:
        sys.modules["torchvision"] = None  # makes `import torchvision.ops` raise ImportError
    try:
        from ptflops import get_model_complexity_info
        from ptflops.flops_counter import FLOPS_BACKEND
    finally:
        if blocked:
            del sys.modules["torchvision"]
    return get_model_complexity_info, FLOPS_BACKEND


get_model_complexity_info, FLOPS_BACKEND = _import_ptflops()

PTFLOPS_BACKEND = FLOPS_BACKEND.PYTORCH


def ptflops_count(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(MACs, parameters) of one input of `input_shape` (no batch dim), model in eval mode."""
    was_training = model.training
    model.eval()
    try:
        macs, params = get_model_complexity_info(
            model,
            input_shape,
            as_strings=False,
            print_per_layer_stat=False,
            backend=PTFLOPS_BACKEND,
            ost=io.StringIO(),
            backend_specific_config={"count_functional": False},
        )
    finally:
        model.train(was_training)
    return int(macs), int(params)


def linear_macs(in_f: int, out_f: int, rank: int | None = None, bias: bool = True) -> int:
    """MACs of a Linear, or of its rank-r two-layer form when that is smaller."""
    b = out_f if bias else 0
    if rank is not None and rank * (in_f + out_f) < in_f * out_f:
        return rank * (in_f + out_f) + b
    return in_f * out_f + b


def linear_params(in_f: int, out_f: int, rank: int | None = None, bias: bool = True) -> int:
    return linear_macs(in_f, out_f, rank, bias)  # one weight per MAC, plus the bias


def fcn_dims(depth: int, width: int, in_features: int = 784, classes: int = 10) -> list:
    """(in, out) of each Linear of FCN-`depth`."""
    sizes = [in_features] + [width] * (depth - 1) + [classes]
    return list(zip(sizes[:-1], sizes[1:], strict=True))


def analytic_fcn(
    depth: int,
    width: int,
    ranks: list[int] | None = None,
    in_features: int = 784,
    classes: int = 10,
    batchnorm: bool = False,
) -> tuple[int, int]:
    """(MACs, parameters) of FCN-`depth` from its dimensions alone, optionally truncated."""
    dims = fcn_dims(depth, width, in_features, classes)
    ranks = ranks or [None] * len(dims)
    macs = sum(linear_macs(i, o, r) for (i, o), r in zip(dims, ranks, strict=True))
    params = sum(linear_params(i, o, r) for (i, o), r in zip(dims, ranks, strict=True))
    hidden = depth - 1
    macs += hidden * width  # ReLU per hidden layer (ptflops counts one op per element)
    if batchnorm:
        macs += hidden * 2 * width  # affine BatchNorm1d
        params += hidden * 2 * width  # BatchNorm1d weight and bias
    return macs, params
