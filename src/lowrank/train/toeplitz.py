"""Training job of the Toeplitz study (seed 001): the 2-conv CNN, one run per seed, keeping the
model state of every epoch.

The seed tests every method after every epoch and reports the average over the 250 epochs
(and the rank-1 curve over epochs), so the per-epoch states are what the sweep evaluates. The
job drives lowrank.train.loop.train one epoch further per call: each call resumes from the
run's checkpoint (model, optimizer and generator state), so the result equals one
uninterrupted run, and a killed job resumes at its last finished epoch.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from lowrank.atomic import read_json, write_json, write_with
from lowrank.config import params_hash
from lowrank.data.images import ImageSplits, load_images
from lowrank.models.registry import build
from lowrank.provenance import stamp
from lowrank.train.loop import TrainConfig, accuracy, train

# The settings a run depends on (the seed names its directory instead).
RUN_KEYS = (
    "dataset",
    "channels",
    "hidden",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "train_subset",
)


def model_kwargs(cfg: dict, splits: ImageSplits) -> dict:
    channels, height, width = splits.shape
    if height != width:
        raise ValueError(f"square images expected, got {height}x{width}")
    return {
        "channels": tuple(cfg["channels"]),
        "hidden": cfg["hidden"],
        "in_channels": channels,
        "image_size": height,
        "num_classes": splits.num_classes,
    }


def build_model(cfg: dict, splits: ImageSplits) -> torch.nn.Sequential:
    return build("twoconv", **model_kwargs(cfg, splits))


def run_dir(out: Path, cfg: dict, seed: int) -> Path:
    return out / "runs" / params_hash({k: cfg[k] for k in RUN_KEYS}) / f"seed{seed}"


def epoch_state(folder: Path, epoch: int) -> Path:
    return folder / "epochs" / f"epoch{epoch:04d}.pt"


def load_epoch(cfg: dict, splits: ImageSplits, folder: Path, epoch: int) -> torch.nn.Sequential:
    model = build_model(cfg, splits)
    model.load_state_dict(torch.load(epoch_state(folder, epoch), weights_only=True))
    return model.eval()


def train_seed(cfg: dict, splits: ImageSplits, folder: Path, seed: int, log=print) -> dict:
    """Train one seed for cfg['epochs'] epochs, saving every epoch's state; return run.json."""
    record = folder / "run.json"
    if record.is_file():
        return read_json(record)
    n = cfg.get("train_subset")
    train_xy = (splits.train_x[:n], splits.train_y[:n]) if n else (splits.train_x, splits.train_y)
    base = TrainConfig(cfg["epochs"], cfg["batch_size"], cfg["lr"], cfg["weight_decay"], seed)
    checkpoint = folder / "checkpoint.pt"
    said_resume = False

    def quiet(message: str) -> None:  # every call resumes; say so once
        nonlocal said_resume
        if message.startswith("resumed"):
            if said_resume:
                return
            said_resume = True
        log(message)

    model = None
    for epoch in range(1, cfg["epochs"] + 1):
        path = epoch_state(folder, epoch)
        if path.is_file():
            continue
        model, _ = train(
            lambda: build_model(cfg, splits),
            replace(base, epochs=epoch),
            train_xy,
            (splits.val_x, splits.val_y),
            checkpoint=checkpoint,
            log=quiet,
        )
        write_with(path, lambda p, m=model: torch.save(m.state_dict(), p))
    history = torch.load(checkpoint, weights_only=False)["history"]
    if model is None:
        model = load_epoch(cfg, splits, folder, cfg["epochs"])
    run = {
        "seed": seed,
        "history": history,
        "val_acc": history[-1]["val_acc"],
        "test_acc": accuracy(model, splits.test_x, splits.test_y),
        "train_seconds": sum(h["seconds"] for h in history),  # survives resumes
        "train_images": len(train_xy[0]),
    }
    write_json(record, run)
    checkpoint.unlink(missing_ok=True)  # the epoch states are kept; the optimizer is not
    return run


def train_toeplitz(block: dict, data: str | ImageSplits, out: Path, log=print) -> dict:
    """Train every seed of the study and write out/train.json (the job's output, last).
    `data` is the data_dir or the already loaded dataset."""
    cfg = block["toeplitz"]
    t0 = time.perf_counter()
    splits = data if isinstance(data, ImageSplits) else load_images(cfg["dataset"], data)
    runs = []
    for seed in cfg["seeds"]:
        log(f"2-conv CNN on {splits.label}, seed {seed}")
        runs.append(train_seed(cfg, splits, run_dir(out, cfg, seed), seed, log))
    summary = {
        "study": "toeplitz",
        "dataset": cfg["dataset"],
        "dataset_label": splits.label,
        "dataset_checksum": splits.checksum,
        "image_shape": list(splits.shape),
        "model": {"name": "twoconv", **model_kwargs(cfg, splits)},
        "settings": {k: cfg[k] for k in RUN_KEYS},
        "run_dirs": {
            str(seed): str(run_dir(out, cfg, seed).relative_to(out)) for seed in cfg["seeds"]
        },
        "runs": runs,
        "provenance": stamp(cfg, cfg["seeds"], splits.checksum, time.perf_counter() - t0),
    }
    write_json(out / "train.json", summary)
    return summary
