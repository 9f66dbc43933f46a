"""The CNN of the rank-constrained convolution slides (seed 000), in its four variants.

The slides give no architecture beyond "convolutional blocks" of "convolutional layers"
followed by linear layers ("due to linear layers and activations, the convolution wasn't
necessarily the bottleneck"). We therefore use a small VGG-like CIFAR CNN (our choice, stated
in params.yaml and the report): blocks of KxK convolutions with ReLU, each block closed by 2x2
max pooling, then Linear -> ReLU -> Linear. Every convolution is a RankConv2d of the run's
rank, or PyTorch's nn.Conv2d for the dense baseline. The four variants of the slides:

- plain: the network above;
- dropout: dropout "in between each convolutional block" (after every block but the last);
- batchnorm: BatchNorm2d "in between each convolutional layer" (after every convolution,
  before its ReLU);
- both: dropout and batch norm.

Dropout takes its mask as an argument when one is given, so a training loop can draw every
seed's masks from that seed's own generator; this makes a seed's result independent of
whether it trains alone or inside a vectorized (vmap) ensemble.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lowrank.methods.rankconv import make_conv

VARIANTS = ("plain", "dropout", "batchnorm", "both")


class MaskedDropout(nn.Module):
    """Inverted dropout with an optional caller-drawn mask (already scaled by 1 / (1 - p))."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            return x * mask if self.training else x
        return F.dropout(x, self.p, self.training)


class RankCNN(nn.Module):
    """Conv blocks (rank-N or dense convolutions) -> Linear -> ReLU -> Linear."""

    def __init__(
        self,
        kernel_size: int,
        rank: int | None,
        variant: str,
        channels: list[list[int]],
        hidden: int,
        dropout: float,
        in_channels: int,
        image_size: int,
        num_classes: int,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant '{variant}' (known: {', '.join(VARIANTS)})")
        batchnorm = variant in ("batchnorm", "both")
        self.dropout_p = dropout if variant in ("dropout", "both") else 0.0
        blocks, self.mask_shapes = [], []
        c, size = in_channels, image_size
        for width_list in channels:
            layers: list[nn.Module] = []
            for width in width_list:
                layers.append(make_conv(c, width, kernel_size, rank, bias=not batchnorm))
                if batchnorm:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.ReLU())
                c = width
            layers.append(nn.MaxPool2d(2))
            size //= 2
            blocks.append(nn.Sequential(*layers))
            self.mask_shapes.append((c, size, size))
        self.mask_shapes = self.mask_shapes[:-1] if self.dropout_p > 0 else []
        self.blocks = nn.ModuleList(blocks)
        self.drops = nn.ModuleList(MaskedDropout(self.dropout_p) for _ in self.mask_shapes)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * size * size, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor, masks: tuple[torch.Tensor, ...] | None = None):
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i < len(self.drops):
                x = self.drops[i](x, None if masks is None else masks[i])
        return self.head(x)


def rankconv_cnn(
    kernel_size: int,
    rank: int | None,
    variant: str = "plain",
    channels: list[list[int]] | None = None,
    hidden: int = 256,
    dropout: float = 0.25,
    in_channels: int = 3,
    image_size: int = 32,
    num_classes: int = 10,
) -> RankCNN:
    """The slides' network (our VGG-like stand-in) with KxK convolutions of rank `rank`."""
    return RankCNN(
        kernel_size,
        rank,
        variant,
        channels or [[32, 32], [64, 64], [128, 128]],
        hidden,
        dropout,
        in_channels,
        image_size,
        num_classes,
    )
