"""Post-hoc Tucker-2 decomposition of trained convolutions (seed 002), with tensorly.

A KxK kernel W (Cout x Cin x K x K) is approximated by HOOI on its two channel modes only
(tensorly's `partial_tucker`, modes 0 and 1): W ~ core x_0 U_out x_1 U_in with a core of size
r_out x r_in x K x K. The layer becomes three convolutions: 1x1 (Cin -> r_in, weight U_in^T),
the KxK core (r_in -> r_out, the layer's stride, padding and dilation), 1x1 (r_out -> Cout,
weight U_out, the original bias). The first 1x1 acts per pixel, so it commutes with any
padding mode and the product equals the decomposed kernel's convolution exactly.

tensorly runs on its numpy backend on float64 copies of the weights: the decomposition is a
one-off per layer, float64 makes the full-rank reconstruction exact to rounding, and the
numpy backend leaves tensorly's global backend (`tl.set_backend`) untouched for other code.

Rank selection (each returns {layer name: (r_out, r_in)}):
- `energy_ranks`: the smallest ranks whose mode-0 / mode-1 unfolding singular values keep a
  fraction `energy` of the squared spectrum;
- `search_ranks`: the blog's search, one rank r per layer (clipped to each mode's size) grown
  from 1 until the validation accuracy with only that layer decomposed clears a threshold;
- VBMF is not offered: the only implementation on PyPI is inside musco-pytorch 1.0.6 (last
  release October 2020), which pins tensorly==0.4.5 and so cannot live beside tensorly 0.10.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from tensorly.decomposition import partial_tucker
from torch import nn

Ranks = dict[str, tuple[int, int]]


def eligible_convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Every ungrouped Conv2d with a kernel larger than 1x1, in module order."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and m.groups == 1 and m.kernel_size != (1, 1)
    ]


def _weight(conv: nn.Conv2d) -> np.ndarray:
    return conv.weight.detach().cpu().double().numpy()


def tucker2_factors(
    weight: np.ndarray, r_out: int, r_in: int, n_iter_max: int = 100, tol: float = 1e-8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HOOI on modes 0 and 1: (core r_out x r_in x K x K, U_out Cout x r_out, U_in Cin x r_in)."""
    result = partial_tucker(
        weight, rank=[r_out, r_in], modes=[0, 1], init="svd", n_iter_max=n_iter_max, tol=tol
    )
    # tensorly >= 0.8 returns ((core, factors), errors); older releases (core, factors)
    core, (u_out, u_in) = result[0] if isinstance(result[0], tuple | list) else result
    return np.asarray(core), np.asarray(u_out), np.asarray(u_in)


def tucker2_conv(conv: nn.Conv2d, r_out: int, r_in: int) -> nn.Sequential:
    """The three-convolution Tucker-2 form of `conv` at ranks (r_out, r_in)."""
    if conv.groups != 1:
        raise ValueError("Tucker-2 needs an ungrouped convolution")
    r_out, r_in = min(r_out, conv.out_channels), min(r_in, conv.in_channels)
    core, u_out, u_in = tucker2_factors(_weight(conv), r_out, r_in)
    dtype = conv.weight.dtype
    first = nn.Conv2d(conv.in_channels, r_in, 1, bias=False)
    middle = nn.Conv2d(
        r_in,
        r_out,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=False,
        padding_mode=conv.padding_mode,
    )
    last = nn.Conv2d(r_out, conv.out_channels, 1, bias=conv.bias is not None)
    with torch.no_grad():
        first.weight.copy_(torch.from_numpy(u_in.T.copy()).to(dtype)[:, :, None, None])
        middle.weight.copy_(torch.from_numpy(core).to(dtype))
        last.weight.copy_(torch.from_numpy(u_out.copy()).to(dtype)[:, :, None, None])
        if conv.bias is not None:
            last.bias.copy_(conv.bias)
    return nn.Sequential(first, middle, last)


def replace_modules(model: nn.Module, new: dict[str, nn.Module]) -> nn.Module:
    """A deep copy of `model` with the submodules named in `new` replaced."""
    out = copy.deepcopy(model)
    for name, module in new.items():
        parent_name, _, child = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        setattr(parent, child, module)
    return out


def decompose(model: nn.Module, ranks: Ranks) -> nn.Module:
    """A copy of `model` whose layers named in `ranks` are Tucker-2 decomposed."""
    convs = dict(model.named_modules())
    return replace_modules(model, {n: tucker2_conv(convs[n], *r) for n, r in ranks.items()})


def mode_spectra(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values of the mode-0 (output) and mode-1 (input) unfoldings of a kernel."""
    out = np.linalg.svd(weight.reshape(weight.shape[0], -1), compute_uv=False)
    inp = np.linalg.svd(np.moveaxis(weight, 1, 0).reshape(weight.shape[1], -1), compute_uv=False)
    return out, inp


def energy_rank(singular_values: np.ndarray, energy: float) -> int:
    """The smallest k whose top-k squared singular values hold `energy` of the total."""
    power = np.asarray(singular_values, dtype=float) ** 2
    if power.sum() == 0:
        return 1
    kept = np.cumsum(power) / power.sum()
    return int(min(np.searchsorted(kept, energy - 1e-12) + 1, len(power)))


def energy_ranks(model: nn.Module, energy: float) -> Ranks:
    ranks = {}
    for name, conv in eligible_convs(model):
        s_out, s_in = mode_spectra(_weight(conv))
        ranks[name] = (energy_rank(s_out, energy), energy_rank(s_in, energy))
    return ranks


def clipped(conv: nn.Conv2d, rank: int) -> tuple[int, int]:
    """The blog grows one rank per layer; each mode is capped at its size."""
    return min(rank, conv.out_channels), min(rank, conv.in_channels)


def search_ranks(
    model: nn.Module,
    evaluate: Callable[[nn.Module], float],
    threshold: float,
    step: int = 1,
    log: Callable[[str], None] = print,
    base: float | None = None,
) -> tuple[Ranks, dict[str, list[dict]]]:
    """The blog's search: per layer, grow r = step, 2*step, ... until the validation accuracy
    with only that layer decomposed is at least (dense accuracy - threshold).

    Returns the ranks and every evaluated step (rank, accuracy) per layer. A layer that never
    clears the threshold gets its full ranks. `base`: the dense accuracy, if already known.
    """
    base = evaluate(model) if base is None else base
    ranks, trace = {}, {}
    for name, conv in eligible_convs(model):
        full = max(conv.out_channels, conv.in_channels)
        trace[name] = []
        for r in [*range(step, full, step), full]:
            acc = evaluate(decompose(model, {name: clipped(conv, r)}))
            trace[name].append({"rank": r, "acc": acc})
            if acc >= base - threshold:
                break
        ranks[name] = clipped(conv, trace[name][-1]["rank"])
        log(f"search {name}: ranks {ranks[name]} (accuracy {acc:.4f}, dense {base:.4f})")
    return ranks, trace


def sensitivity(
    model: nn.Module,
    evaluate: Callable[[nn.Module], float],
    fraction: float,
    base: float | None = None,
) -> dict[str, float]:
    """Accuracy lost when only one layer is decomposed at `fraction` of each mode's size."""
    base = evaluate(model) if base is None else base
    out = {}
    for name, conv in eligible_convs(model):
        r = (
            max(1, round(fraction * conv.out_channels)),
            max(1, round(fraction * conv.in_channels)),
        )
        out[name] = base - evaluate(decompose(model, {name: r}))
    return out


def conv_macs(cin: int, cout: int, kernel: tuple[int, int], out_hw: tuple[int, int], bias: bool):
    """MACs of an ungrouped convolution in ptflops' convention (bias: one per output)."""
    positions = out_hw[0] * out_hw[1]
    return positions * cin * cout * kernel[0] * kernel[1] + (cout * positions if bias else 0)


def tucker2_macs(
    conv: nn.Conv2d, r_out: int, r_in: int, in_hw: tuple[int, int], out_hw: tuple[int, int]
) -> int:
    """Analytic MACs of the three-convolution form: 1x1 at the input resolution, the core at
    the output resolution, 1x1 at the output resolution with the bias."""
    return (
        conv_macs(conv.in_channels, r_in, (1, 1), in_hw, False)
        + conv_macs(r_in, r_out, conv.kernel_size, out_hw, False)
        + conv_macs(r_out, conv.out_channels, (1, 1), out_hw, conv.bias is not None)
    )


def tucker2_params(conv: nn.Conv2d, r_out: int, r_in: int) -> int:
    k = conv.kernel_size[0] * conv.kernel_size[1]
    bias = conv.out_channels if conv.bias is not None else 0
    return conv.in_channels * r_in + r_in * r_out * k + r_out * conv.out_channels + bias


def layer_shapes(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, dict]:
    """Input (C, H, W) and output (H, W) of every eligible conv, from one forward pass."""
    shapes: dict[str, dict] = {}
    hooks = [
        conv.register_forward_hook(
            lambda m, i, o, n=name: shapes.__setitem__(
                n, {"input": tuple(i[0].shape[1:]), "out_hw": tuple(o.shape[2:])}
            )
        )
        for name, conv in eligible_convs(model)
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return shapes
