"""One entry point for every image dataset a study trains on.

Studies name a dataset in params (`mnist`, `mnist32`, `cifar10`, `cifar100`, `cifar10_gray`);
this module loads it once as tensors with a train/validation/test split and a label that says
exactly what the data are, so a report can never pass MNIST off as CIFAR. It imports torch only
when loading, so the Snakefile can call `resolve_dataset` at DAG time cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lowrank.atomic import read_json
from lowrank.errors import UserError

if TYPE_CHECKING:
    import torch


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
    import torch.nn.functional as F

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


# ITU-R 601-2 luma, the weights of PIL's convert("L") and torchvision's Grayscale (whose
# tensor path uses 0.2989 for red); applied to the float pixels, so no rounding to uint8.
LUMA = (0.299, 0.587, 0.114)


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) luma."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


CIFAR_LABELS = {
    "cifar10": "CIFAR-10 (real data)",
    "cifar100": "CIFAR-100 (real data, 100 fine classes)",
    "cifar10_gray": "CIFAR-10 (real data), grayscale (ITU-R 601-2 luma 0.299R+0.587G+0.114B)",
}


def _cifar(data_dir: str | Path, name: str, spec=None) -> ImageSplits:
    """CIFAR as float32 in [0, 1] (uint8 / 255): 45k train / 5k validation / 10k test."""
    import torch

    from lowrank.data.cifar import load_cifar

    gray = name.endswith("_gray")
    a = load_cifar(name.removesuffix("_gray"), data_dir, spec)

    def images(x):
        t = torch.from_numpy(x).to(torch.float32).div_(255.0)
        return to_gray(t) if gray else t

    def labels(y):
        return torch.from_numpy(y)

    return ImageSplits(
        name,
        CIFAR_LABELS[name],
        a.checksum,
        len(a.classes),
        images(a.train_x),
        labels(a.train_y),
        images(a.val_x),
        labels(a.val_y),
        images(a.test_x),
        labels(a.test_y),
    )


LOADERS = {
    "mnist": lambda d: _mnist(d, None),
    "mnist32": lambda d: _mnist(d, 32),
    "cifar10": lambda d: _cifar(d, "cifar10"),
    "cifar100": lambda d: _cifar(d, "cifar100"),
    "cifar10_gray": lambda d: _cifar(d, "cifar10_gray"),
}
# The fetched dataset (folder under data_dir, with its MANIFEST.json) each loader reads.
FETCHED = {
    "mnist": "mnist",
    "mnist32": "mnist",
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "cifar10_gray": "cifar10",
}


def _known(name: str) -> None:
    if name not in LOADERS:
        raise UserError(f"unknown dataset '{name}' (known: {', '.join(sorted(LOADERS))})")


def manifest_path(name: str, data_dir: str | Path) -> Path:
    """The manifest that `lowrank fetch` writes for dataset `name`: the fetch rule's output."""
    _known(name)
    return Path(data_dir) / FETCHED[name] / "MANIFEST.json"


def is_present(name: str, data_dir: str | Path) -> bool:
    """Whether `name`'s files were fetched and verified into data_dir.

    Cheap enough for DAG time: it trusts the manifest that fetch writes only after checksum
    verification, and checks that every file it lists is still there with its recorded size
    (the loaders verify checksums again before any training).
    """
    path = manifest_path(name, data_dir)
    try:
        files = read_json(path)["files"]
    except (OSError, ValueError, KeyError, TypeError, UserError):
        return False
    if not isinstance(files, dict) or not files:
        return False
    for file, info in files.items():
        target = path.parent / file
        if not target.is_file():
            return False
        if isinstance(info, dict) and "bytes" in info and target.stat().st_size != info["bytes"]:
            return False
    return True


def resolve_dataset(preferred: str, fallback: str | None, data_dir: str | Path) -> str:
    """`preferred` if its verified files are in data_dir, else `fallback`.

    Quick scale uses CIFAR when the files are there and otherwise real MNIST padded to 32x32
    (labelled as such). With no fallback the answer is `preferred`: its fetch rule fetches it.
    """
    _known(preferred)
    if fallback is None:
        return preferred
    _known(fallback)
    return preferred if is_present(preferred, data_dir) else fallback


def load_images(name: str, data_dir: str | Path) -> ImageSplits:
    """Load dataset `name` from `data_dir` (already fetched and verified)."""
    _known(name)
    return LOADERS[name](data_dir)
