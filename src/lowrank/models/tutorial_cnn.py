"""The CNN of the Tucker blog's companion notebook (seed 002): PyTorch's CIFAR-10 tutorial net.

The blog text lost its network; its "Code Follow Along" notebook (CNN_Decomposition.ipynb of
FranciscoRMendes/tensor-rank) trains the tutorial net conv(3->6, 5x5) - maxpool 2 -
conv(6->16, 5x5) - maxpool 2 - fc 400-120-84-10 with ReLUs, and decomposes its convolutions.
The course project (seed 003) names no network; the study uses the same one for it.
`in_channels` and `image_size` let it run on single-channel MNIST zero-padded to 32x32.
"""

from __future__ import annotations

from torch import nn


def tutorial_cnn(
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    width: int = 1,
) -> nn.Sequential:
    """The tutorial net; `width` multiplies its channel counts (1 = the notebook's 6 and 16)."""
    c1, c2 = 6 * width, 16 * width
    side = ((image_size - 4) // 2 - 4) // 2  # two valid 5x5 convolutions, two 2x2 pools
    if side < 1:
        raise ValueError(f"image_size {image_size} is too small for the tutorial CNN")
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * side * side, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )
