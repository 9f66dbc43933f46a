"""FCN-L of the LoRITa paper: L linear layers, each hidden one followed by ReLU.

The paper's FCN is plain Linear + ReLU. BatchNorm1d after each hidden ReLU is an option
(`batchnorm=True`), not the default: it makes every hidden layer scale-invariant, which breaks
the weight-decay-as-Schatten-norm argument LoRITa rests on.
"""

from __future__ import annotations

from torch import nn


def fcn(
    depth: int,
    width: int,
    in_features: int = 784,
    num_classes: int = 10,
    batchnorm: bool = False,
    he_init: bool = True,
) -> nn.Sequential:
    """FCN with `depth` Linear layers of hidden size `width` (depth=6 is the paper's FCN-6).

    Hidden layers start from He initialization (normal, std sqrt(2 / fan_in), zero bias), the
    standard for ReLU networks (He et al. 2015): without BatchNorm, PyTorch's default (a
    third of that variance) shrinks the signal through ten ReLU layers, and FCN-10 with
    N = 3 (30 linear maps deep) was measured not to learn in 3 epochs (test 0.10-0.52)."""
    if depth < 2:
        raise ValueError("an FCN needs at least 2 linear layers")
    layers: list[nn.Module] = [nn.Flatten()]
    d = in_features
    for _ in range(depth - 1):
        linear = nn.Linear(d, width)
        if he_init:
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
        layers += [linear, nn.ReLU()]
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        d = width
    layers.append(nn.Linear(d, num_classes))
    return nn.Sequential(*layers)
