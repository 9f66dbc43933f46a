"""One entry point for every image dataset a study trains on.

Studies name a dataset in params (`mnist`, `mnist32`, later `cifar10`, `cifar100`, and the
`_gray` variants); this module loads it once as tensors with a 50k/10k/10k-style split and a
label that says exactly what the data are, so a report can never pass MNIST off as CIFAR.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from lowrank.errors import UserError


@dataclass
class ImageSplits:
    """Float32 images (N, C, H, W) in [0, 1], int64 labels, and what they are."""

    name: str  # the params value, e.g. "mnist32"
    label: str  # human description shown in reports, e.g. "MNIST (real), zero-padded to 32x32"
    checksum: str  # of the verified source files
    num_classes: int
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])


def _pad(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad square images symmetrically to `size` (MNIST 28 -> 32, the CIFAR size)."""
    extra = size - x.shape[-1]
    return F.pad(x, (extra // 2, extra - extra // 2, extra // 2, extra - extra // 2))


def _mnist(data_dir: str | Path, pad_to: int | None) -> ImageSplits:
    from lowrank.data.mnist import load_mnist

    s = load_mnist(data_dir)
    parts = [s.train_x, s.train_y, s.val_x, s.val_y, s.test_x, s.test_y]
    label = "MNIST (real data)"
    if pad_to:
        parts[0::2] = [_pad(x, pad_to) for x in parts[0::2]]
        label = f"MNIST (real data), zero-padded to {pad_to}x{pad_to}"
    name = "mnist" if not pad_to else f"mnist{pad_to}"
    return ImageSplits(name, label, s.checksum, 10, *parts)


LOADERS = {
    "mnist": lambda d: _mnist(d, None),
    "mnist32": lambda d: _mnist(d, 32),
}


def load_images(name: str, data_dir: str | Path) -> ImageSplits:
    """Load dataset `name` from `data_dir` (already fetched and verified)."""
    if name not in LOADERS:
        raise UserError(f"unknown dataset '{name}' (known: {', '.join(sorted(LOADERS))})")
    return LOADERS[name](data_dir)
