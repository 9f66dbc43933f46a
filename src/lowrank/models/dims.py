"""Layer dimensions of the models, without torch: shared by the builders, the analytic
counts and the plan-time memory check (which must not import torch)."""

from __future__ import annotations

import math

CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M"]
    + [512, 512, 512, "M"],
}


def scaled(channels: int, width: float) -> int:
    """Channels after the width multiplier (quick scales narrow every layer), at least 1."""
    return max(1, round(channels * width))


def vit_dims(dim: int, mlp_dim: int, heads: int, width: float) -> tuple[int, int]:
    """Hidden and MLP widths after the width multiplier; dim stays a multiple of 4*heads."""
    step = 4 * heads // math.gcd(4, heads)
    return max(step, round(dim * width / step) * step), max(1, round(mlp_dim * width))


def is_thin(in_dim: int, out_dim: int, rank: int) -> bool:
    """Whether the two-layer rank-r form has fewer MACs (and weights) than the dense layer."""
    return rank * (in_dim + out_dim) < in_dim * out_dim
