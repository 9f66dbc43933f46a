"""A tiny CNN run (BatchNorm, dropout, SGD + Nesterov, cosine schedule, augmentation) for the
training-loop tests; run as a script it trains once with a checkpoint and writes result.json:

    python tests/tiny_cnn.py OUT_DIR EPOCHS N_TRAIN
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

from lowrank.train.loop import TrainConfig, train  # noqa: E402


def tiny_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),  # draws from the global RNG: its state must be checkpointed too
        nn.Linear(16, 4),
    )


def toy_images(n_train: int = 128, size: int = 16, seed: int = 0, n_val: int = 64):
    """Random images whose label is the brightest quadrant, so the CNN can learn something."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_train + n_val, 3, size, size, generator=g)
    h = size // 2
    quadrants = torch.stack(
        [x[..., :h, :h].mean((1, 2, 3)), x[..., :h, h:].mean((1, 2, 3))]
        + [x[..., h:, :h].mean((1, 2, 3)), x[..., h:, h:].mean((1, 2, 3))],
        1,
    )
    y = quadrants.argmax(1)
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def cnn_config(epochs: int, **overrides) -> TrainConfig:
    settings = {
        "epochs": epochs,
        "batch_size": 32,
        "lr": 0.05,
        "weight_decay": 5e-4,
        "seed": 11,
        "optimizer": "sgd",
        "nesterov": True,
        "schedule": "cosine",
        "augment": True,
    }
    return TrainConfig(**{**settings, **overrides})


def weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([t.detach().flatten().float() for t in model.state_dict().values()])


if __name__ == "__main__":
    out, epochs, n_train = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    train_xy, val_xy = toy_images(n_train, size=32)
    model, history = train(
        tiny_cnn, cnn_config(epochs), train_xy, val_xy, checkpoint=out / "checkpoint.pt"
    )
    result = {"history": history, "weights": weights(model).tolist()}
    (out / "result.json").write_text(json.dumps(result))
