"""Minibatch training on in-memory tensors, deterministic on CPU and resumable.

Data stay on the device as one tensor; each epoch draws one permutation from the run's own
generator, so a run's result depends only on its seed. A checkpoint is written atomically
after every epoch; a killed job resumes from the last completed epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lowrank.atomic import write_with


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 5000) -> float:
    """Top-1 accuracy in eval mode, in large batches."""
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
    model.train(was_training)
    return correct / len(x)


def train(
    make_model: Callable[[], nn.Module],
    cfg: TrainConfig,
    train_xy,
    val_xy,
    checkpoint: Path | None = None,
    log: Callable[[str], None] = print,
) -> tuple:
    """Train a fresh model (built under the run's seed); return (model, history).

    Adam with L2 weight decay (torch's `weight_decay`), as the LoRITa paper trains.
    """
    torch.manual_seed(cfg.seed)
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    history: list[dict] = []
    start_epoch = 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        history, start_epoch = state["history"], state["epoch"]
        log(f"resumed from {checkpoint} at epoch {start_epoch}")
    x, y = train_xy
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(x), generator=generator)
        total, batches = 0.0, 0
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item()
            batches += 1
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": total / max(batches, 1),
                "val_acc": accuracy(model, *val_xy),
                "seconds": time.perf_counter() - t0,
            }
        )
        log(
            f"epoch {epoch + 1}/{cfg.epochs} loss {history[-1]['train_loss']:.4f} "
            f"val {history[-1]['val_acc']:.4f} ({history[-1]['seconds']:.1f}s)"
        )
        if checkpoint is not None:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "history": history,
                "epoch": epoch + 1,
            }
            write_with(checkpoint, lambda p, s=state: torch.save(s, p))
    model.eval()
    return model, history
