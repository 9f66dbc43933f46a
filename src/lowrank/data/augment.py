"""CIFAR's standard augmentation on a whole batch at once, on the batch's device.

Random crop with zero padding 4 and a horizontal flip with probability 1/2 (as torchvision's
RandomCrop(32, padding=4) followed by RandomHorizontalFlip), but for N images in one gather:
pad once, then read every output pixel from the padded batch with per-image row and column
indices. A flip only reverses the column indices, so crop and flip are one indexing op.

The random offsets come from an explicit CPU torch.Generator (the training run's own), drawn
as 3 small integer vectors per batch and moved to the device, so a run is deterministic on any
device and its augmentation stream is part of its checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_flip(
    x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, padding: int
) -> torch.Tensor:
    """Crop each image of x (N, C, H, W), zero-padded by `padding`, at offset (dy, dx) in the
    padded image (0 .. 2*padding), then mirror it horizontally where `flip` is true.

    dy = dx = padding and no flip is the identity; out[n, c, i, j] = x[n, c, i + dy - p,
    j' + dx - p] (zero outside x) with j' = W - 1 - j when flipped, else j.
    """
    n, c, h, w = x.shape
    device = x.device
    padded = F.pad(x, (padding, padding, padding, padding)) if padding else x
    rows = dy.to(device).view(n, 1, 1, 1) + torch.arange(h, device=device).view(1, 1, h, 1)
    j = torch.arange(w, device=device).view(1, 1, 1, w)
    cols = torch.where(flip.to(device).view(n, 1, 1, 1), w - 1 - j, j) + dx.to(device).view(
        n, 1, 1, 1
    )
    batch = torch.arange(n, device=device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=device).view(1, c, 1, 1)
    return padded[batch, channel, rows, cols]


def random_crop_flip(
    x: torch.Tensor, generator: torch.Generator, padding: int = 4, flip: bool = True
) -> torch.Tensor:
    """Random crop (zero padding `padding`) and, if `flip`, random horizontal flip of a batch."""
    n = x.shape[0]
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator)
    mirror = torch.randint(0, 2, (n,), generator=generator).bool()
    if not flip:
        mirror = torch.zeros_like(mirror)
    return crop_flip(x, offsets[0], offsets[1], mirror, padding)
