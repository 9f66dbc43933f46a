"""Minibatch training on in-memory tensors for every model: deterministic on CPU, resumable.

Data are moved to the device once and stay there as one tensor; each epoch draws one
permutation (and, with augmentation, each batch's crop offsets and flips) from the run's own
CPU generator, so a run's result depends only on its seed. A checkpoint (model, optimizer,
scheduler, grad scaler, generator and global RNG states, history) is written atomically after
every epoch; a killed job resumes from the last completed epoch and ends exactly where an
uninterrupted run would (on CPU, where every op is deterministic).

On CUDA the loop uses automatic mixed precision (bf16 where supported, else fp16 with a
GradScaler), channels_last memory and cuDNN autotuning, which trade bitwise reproducibility
for speed; on CPU it stays fp32. A non-finite training loss stops the run with a one-line
TrainingDiverged error; the last good checkpoint is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lowrank.atomic import write_with
from lowrank.data.augment import random_crop_flip
from lowrank.errors import UserError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = (None, "cosine", "multistep", "onecycle")
PER_STEP_SCHEDULES = ("onecycle",)  # stepped after every minibatch, not every epoch
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    """One run's settings; the defaults after `seed` are the FCN study's (Adam, constant lr)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float  # L2 through the optimizer's weight_decay (decoupled for adamw)
    seed: int
    optimizer: str = "adam"  # adam | adamw | sgd
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    # None (constant) | cosine (to 0 over `epochs`) | multistep | onecycle (per step: linear
    # warm-up from lr/25 to lr over `warmup` of the steps, then cosine to ~0; Smith 2018)
    schedule: str | None = None
    warmup: float = 0.25  # onecycle: share of the steps spent warming up
    milestones: tuple[int, ...] = ()  # multistep: epochs after which lr is multiplied by gamma
    gamma: float = 0.1  # multistep factor
    augment: bool = False  # random crop (zero padding 4) + horizontal flip, on the device
    precision: str = "auto"  # auto: bf16/fp16 autocast on CUDA, fp32 on CPU | fp32 | bf16 | fp16

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(self.milestones))
        for key, value, allowed in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("precision", self.precision, PRECISIONS),
        ):
            if value not in allowed:
                raise UserError(f"training: {key} '{value}' is not one of {list(allowed)}")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run, None for plain fp32."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int = 5000,
    precision: str = "auto",
) -> tuple[float, float]:
    """(top-1 accuracy, mean cross-entropy) in eval mode, in large batches on the model's
    device (x and y may live elsewhere; each batch is moved). One sync at the end."""
    was_training = model.training
    model.eval()
    device = _model_device(model)
    dtype = autocast_dtype(precision, device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    loss = torch.zeros((), dtype=torch.float64, device=device)
    for i in range(0, len(x), batch):
        xb = x[i : i + batch].to(device, non_blocking=True)
        yb = y[i : i + batch].to(device, non_blocking=True)
        if device.type == "cuda" and xb.dim() == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with _autocast(device, dtype):
            logits = model(xb)
        logits = logits.float()
        correct += (logits.argmax(1) == yb).sum()
        loss += F.cross_entropy(logits, yb, reduction="sum").double()
    model.train(was_training)
    n = len(x)
    if n == 0:
        return math.nan, math.nan
    return correct.item() / n, loss.item() / n


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 5000) -> float:
    """Top-1 accuracy in eval mode, in large batches."""
    return evaluate(model, x, y, batch)[0]


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return kind(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int = 1):
    """A learning-rate schedule (per epoch, or per step for PER_STEP_SCHEDULES), or None."""
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=cfg.lr,
            total_steps=max(cfg.epochs * steps_per_epoch, 1),
            pct_start=cfg.warmup,
            anneal_strategy="cos",
            cycle_momentum=False,
        )
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma
        )
    return None


@contextmanager
def _device_mode(device: torch.device) -> Iterator[None]:
    """On CUDA: cuDNN autotuning, no deterministic-algorithm enforcement (the CLI enables it
    for CPU runs; on CUDA it would refuse cuBLAS without a workspace setting and slow
    indexing). Restored afterwards."""
    if device.type != "cuda":
        yield
        return
    deterministic = torch.are_deterministic_algorithms_enabled()
    benchmark = torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.backends.cudnn.benchmark = benchmark


def _rng_state(device: torch.device) -> dict:
    state = {"cpu": torch.get_rng_state()}  # dropout and other layers draw from it
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _first_bad(losses: list[float]) -> int | None:
    return next((k for k, v in enumerate(losses) if not math.isfinite(v)), None)


def train(
    make_model: Callable[[], nn.Module],
    cfg: TrainConfig,
    train_xy,
    val_xy,
    checkpoint: Path | None = None,
    log: Callable[[str], None] = print,
    device: str | torch.device | None = None,
) -> tuple:
    """Train a fresh model (built under the run's seed) on `device`; return (model, history).

    Defaults reproduce the FCN study: Adam with L2 weight decay (torch's `weight_decay`), as
    the LoRITa paper trains, constant learning rate, no augmentation, CPU.
    """
    device = torch.device(device or "cpu")
    with _device_mode(device):
        return _train(make_model, cfg, train_xy, val_xy, checkpoint, log, device)


def _train(make_model, cfg, train_xy, val_xy, checkpoint, log, device: torch.device) -> tuple:
    torch.manual_seed(cfg.seed)
    model = make_model().to(device)
    channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    dtype = autocast_dtype(cfg.precision, device)
    optimizer = make_optimizer(cfg, model.parameters())
    # batches of at least two samples (BatchNorm needs two)
    n_train = len(train_xy[0])
    starts = [i for i in range(0, n_train, cfg.batch_size) if min(cfg.batch_size, n_train - i) >= 2]
    scheduler = make_scheduler(cfg, optimizer, len(starts))
    per_step = cfg.schedule in PER_STEP_SCHEDULES
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    generator = torch.Generator().manual_seed(cfg.seed)
    history: list[dict] = []
    start_epoch = 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if "rng" in state:
            _set_rng_state(state["rng"], device)
        generator.set_state(state["generator"])
        history, start_epoch = state["history"], state["epoch"]
        log(f"resumed from {checkpoint} at epoch {start_epoch}")
    x, y = (t.to(device) for t in train_xy)  # once; batches are gathered on the device
    val_x, val_y = (t.to(device) for t in val_xy)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        order = torch.randperm(len(x), generator=generator).to(device)
        losses = torch.empty(len(starts), device=device)
        for k, i in enumerate(starts):
            idx = order[i : i + cfg.batch_size]
            xb, yb = x[idx], y[idx]
            if cfg.augment:
                xb = random_crop_flip(xb, generator)
            if channels_last and xb.dim() == 4:
                xb = xb.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, dtype):
                loss = loss_fn(model(xb), yb)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if per_step:
                scheduler.step()
            losses[k] = loss.detach()
        values = losses.tolist()  # one sync per epoch
        bad = _first_bad(values)
        if bad is not None:
            kept = f"{checkpoint} (epoch {epoch}) kept" if epoch and checkpoint else "no checkpoint"
            raise TrainingDiverged(
                f"training diverged: loss {values[bad]} at epoch {epoch + 1}, batch {bad + 1} "
                f"of {len(values)} (lr {lr:g}); {kept}; try a lower learning rate"
            )
        val_acc, val_loss = evaluate(model, val_x, val_y, precision=cfg.precision)
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": sum(values) / max(len(values), 1),
                "val_acc": val_acc,
                "val_loss": val_loss,
                "lr": lr,
                "seconds": time.perf_counter() - t0,
            }
        )
        if scheduler is not None and not per_step:
            scheduler.step()
        if checkpoint is not None:
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "generator": generator.get_state(),
                "rng": _rng_state(device),
                "history": history,
                "epoch": epoch + 1,
            }
            write_with(checkpoint, lambda p, s=state: torch.save(s, p))
        log(
            f"epoch {epoch + 1}/{cfg.epochs} loss {history[-1]['train_loss']:.4f} "
            f"val {val_acc:.4f} ({history[-1]['seconds']:.1f}s)"
        )
    model.eval()
    return model, history
