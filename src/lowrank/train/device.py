"""Which device a training job uses: params' `device` (auto | cpu | cuda)."""

from __future__ import annotations

import torch

from lowrank.errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` takes the GPU when one is visible, so one params file serves laptop and cluster."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("params: key 'device' is 'cuda' but no CUDA device is visible")
    return torch.device(name)
