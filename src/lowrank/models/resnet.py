"""CIFAR ResNets: ResNet18 (CIFAR stem) and ResNet20 (He et al. 2016, Sec. 4.2).

ResNet18: 3x3 stem convolution with stride 1 and no max pool (the CIFAR adaptation of
kuangliu/pytorch-cifar), four stages of two BasicBlocks (64-128-256-512), projection shortcuts
(1x1 conv + BatchNorm) where the shape changes.

ResNet20: 16-32-64 channels, three stages of three BasicBlocks. Shortcut **option B** (1x1
projection + BatchNorm where the shape changes) by default, because that is the ResNet20 LoRITa's
Table 3 implies: its "after" MFLOPs divided by (1 - drop) give 40.79-40.82 M, which is exactly
the convolution + linear MACs of the option-B network (40.813 M; ptflops' aten backend counts
those). He et al.'s option A (zero-padded identity, `shortcut="A"`) has 40.551 M such MACs and
no counting convention (with or without BatchNorm, ReLU, pooling) lands it in that interval.
Parameters (0.272 M with B, 0.270 M with A) fit either. tests/test_models.py checks this.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lowrank.models.vgg import scaled


class PadShortcut(nn.Module):
    """Option A: take every other pixel and zero-pad the new channels (parameter-free)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        front = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, front, self.extra - front))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            if shortcut == "A":
                self.shortcut = PadShortcut(cin, cout, stride)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(
        self,
        stage_channels: list[int],
        blocks_per_stage: int | list[int],
        shortcut: str,
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
    ):
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError("shortcut must be 'A' (zero-pad identity) or 'B' (1x1 projection)")
        channels = [scaled(c, width) for c in stage_channels]
        counts = (
            blocks_per_stage
            if isinstance(blocks_per_stage, list)
            else [blocks_per_stage] * len(channels)
        )
        self.conv1 = nn.Conv2d(in_channels, channels[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[0])
        self.relu = nn.ReLU()
        stages, c = [], channels[0]
        for i, (out, n) in enumerate(zip(channels, counts, strict=True)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(c, out, stride, shortcut))
                c = out
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.fc(self.flatten(self.pool(self.layers(x))))


def resnet18(
    num_classes: int = 10, in_channels: int = 3, width: float = 1.0, image_size: int = 32
) -> ResNet:
    """ResNet18, CIFAR stem (any image_size works: the pool before the head is adaptive)."""
    return ResNet([64, 128, 256, 512], 2, "B", num_classes, in_channels, width)


def resnet20(
    num_classes: int = 10,
    in_channels: int = 3,
    width: float = 1.0,
    image_size: int = 32,
    shortcut: str = "B",
) -> ResNet:
    """ResNet20 of He et al. (2016); option B shortcuts (see the module docstring), or 'A'."""
    return ResNet([16, 32, 64], 3, shortcut, num_classes, in_channels, width)
