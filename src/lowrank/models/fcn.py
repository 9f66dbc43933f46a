"""FCN-L of the LoRITa paper: L linear layers, each hidden one followed by ReLU and BatchNorm1d."""

from __future__ import annotations

from torch import nn


def fcn(depth: int, width: int, in_features: int = 784, num_classes: int = 10) -> nn.Sequential:
    """FCN with `depth` Linear layers of hidden size `width` (depth=6 is the paper's FCN-6)."""
    if depth < 2:
        raise ValueError("an FCN needs at least 2 linear layers")
    layers: list[nn.Module] = [nn.Flatten()]
    d = in_features
    for _ in range(depth - 1):
        layers += [nn.Linear(d, width), nn.ReLU(), nn.BatchNorm1d(width)]
        d = width
    layers.append(nn.Linear(d, num_classes))
    return nn.Sequential(*layers)
