"""The 2-conv CNN of seed 001 (Sec. XI): conv5x5-ReLU-maxpool twice, then FC-ReLU-FC.

The seed names one trained filter per conv layer (F_1, F_2 in R^{5x5}), so the default is one
channel per conv; the channel counts and the hidden width (lost in the text) are arguments.
A plain nn.Sequential with fixed indices, so the NumPy re-implementation and the rank-n
truncation can address its layers.
"""

from __future__ import annotations

from torch import nn

CONV_INDICES = (0, 3)  # positions of the two Conv2d layers in the Sequential
FC_INDICES = (7, 9)


def feature_size(image_size: int, kernel: int = 5) -> int:
    """Side length after (valid conv, 2x2 pool) twice: 32 -> 5, 28 -> 4."""
    side = image_size
    for _ in range(2):
        side = (side - kernel + 1) // 2
    if side < 1:
        raise ValueError(f"image size {image_size} is too small for two 5x5 conv + pool blocks")
    return side


def twoconv_cnn(
    channels: tuple[int, int] = (1, 1),
    hidden: int = 500,
    in_channels: int = 1,
    image_size: int = 32,
    num_classes: int = 10,
    kernel: int = 5,
) -> nn.Sequential:
    c1, c2 = channels
    side = feature_size(image_size, kernel)
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, kernel),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(c1, c2, kernel),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(c2 * side * side, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
