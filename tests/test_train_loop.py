"""The general training loop: SGD/cosine/augmentation/fp16-scaler runs resume exactly after a
kill (in process and with SIGKILL), divergence stops with one line, evaluate is exact."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tiny_cnn import cnn_config, tiny_cnn, toy_images, weights
from torch import nn

from lowrank.errors import UserError
from lowrank.train.loop import TrainConfig, TrainingDiverged, evaluate, train

TESTS = Path(__file__).resolve().parent


class Killed(Exception):
    pass


def kill_after(epoch: int):
    """A log callback that 'kills' the run once epoch `epoch` is checkpointed (the loop logs
    an epoch only after its checkpoint is on disk)."""

    def log(message: str) -> None:
        if message.startswith(f"epoch {epoch}/"):
            raise Killed

    return log


@contextmanager
def cpu_threads(n: int):
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(n)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def quiet(_: str) -> None:
    pass


def same_run(a, b) -> None:
    (ma, ha), (mb, hb) = a, b
    assert torch.equal(weights(ma), weights(mb))
    drop = ("seconds",)
    assert [{k: v for k, v in h.items() if k not in drop} for h in ha] == [
        {k: v for k, v in h.items() if k not in drop} for h in hb
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # SGD + Nesterov, cosine, augmentation, fp32
        # AdamW, multistep, fp16 autocast with a GradScaler (CPU autocast), no augmentation
        {
            "optimizer": "adamw",
            "lr": 2e-3,
            "schedule": "multistep",
            "milestones": [2, 3],
            "augment": False,
            "precision": "fp16",
        },
    ],
    ids=["sgd-cosine-augment", "adamw-multistep-fp16"],
)
def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, overrides):
    train_xy, val_xy = toy_images()
    cfg = cnn_config(4, **overrides)
    with cpu_threads(2):
        full = train(tiny_cnn, cfg, train_xy, val_xy, log=quiet)
        ckpt = tmp_path / "checkpoint.pt"
        with pytest.raises(Killed):
            train(tiny_cnn, cfg, train_xy, val_xy, checkpoint=ckpt, log=kill_after(2))
        state = torch.load(ckpt, weights_only=False)
        assert state["epoch"] == 2 and state["scheduler"] is not None
        assert (state["scaler"] is not None) == (cfg.precision == "fp16")
        if state["scaler"] is not None:  # the live scaler's state: it counted 8 clean steps
            assert state["scaler"]["_growth_tracker"] == 8
        messages = []
        resumed = train(tiny_cnn, cfg, train_xy, val_xy, checkpoint=ckpt, log=messages.append)
    assert messages[0].startswith("resumed from") and len(messages) == 3
    same_run(full, resumed)
    lrs = [h["lr"] for h in full[1]]
    if cfg.schedule == "cosine":  # lr of epoch e (0-based): lr * (1 + cos(pi e / E)) / 2
        expected = [cfg.lr * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
        assert lrs == pytest.approx(expected, rel=1e-12)
    else:
        assert lrs == pytest.approx([2e-3, 2e-3, 2e-4, 2e-5], rel=1e-12)
    assert full[1][-1]["train_loss"] < full[1][0]["train_loss"]  # it learns


def test_sigkill_mid_training_then_resume_equals_uninterrupted(tmp_path):
    """A real SIGKILL at an arbitrary moment (perhaps during a checkpoint write)."""
    epochs, n_train = 6, 1024
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "tiny_cnn.py"), str(tmp_path), str(epochs), str(n_train)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpt = tmp_path / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline:
        assert proc.poll() is None, "training ended before its first checkpoint was seen"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "result.json").exists(), "killed after the run finished"
    assert torch.load(ckpt, weights_only=False)["epoch"] < epochs
    train_xy, val_xy = toy_images(n_train, size=32)
    cfg = cnn_config(epochs)
    with cpu_threads(1):  # the script's settings
        messages = []
        resumed = train(tiny_cnn, cfg, train_xy, val_xy, checkpoint=ckpt, log=messages.append)
        assert messages[0].startswith("resumed from")
        reference = train(tiny_cnn, cfg, train_xy, val_xy, log=quiet)
    same_run(reference, resumed)


class PoisonAt(nn.Module):
    """Identity whose output turns NaN at its n-th training forward call."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.n:
                return x * float("nan")
        return x


def test_divergence_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g)
    ckpt = tmp_path / "checkpoint.pt"
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.1, weight_decay=0.0, seed=0)
    # 4 batches an epoch: the 7th training forward is epoch 2, batch 3
    with pytest.raises(TrainingDiverged) as info:
        train(
            lambda: nn.Sequential(nn.Linear(5, 3), PoisonAt(7)),
            cfg,
            (x, y),
            (x, y),
            checkpoint=ckpt,
            log=quiet,
        )
    message = str(info.value)
    assert isinstance(info.value, UserError) and "\n" not in message
    assert "epoch 2, batch 3 of 4" in message and "lower learning rate" in message
    assert "nan" in message and str(ckpt) in message
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1  # the last good one, kept


def test_bad_settings_are_one_line_errors():
    with pytest.raises(UserError, match="optimizer 'rmsprop'"):
        TrainConfig(1, 2, 0.1, 0.0, 0, optimizer="rmsprop")
    with pytest.raises(UserError, match="schedule 'linear'"):
        TrainConfig(1, 2, 0.1, 0.0, 0, schedule="linear")


def test_evaluate_gives_accuracy_and_mean_loss_over_all_batches():
    g = torch.Generator().manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    x, y = torch.randn(50, 3, 2, 2, generator=g), torch.randint(0, 4, (50,), generator=g)
    acc, loss = evaluate(model, x, y, batch=7)  # 8 batches, the last one short
    with torch.no_grad():
        logits = model(x)
    assert acc == (logits.argmax(1) == y).sum().item() / 50
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert model.training  # mode restored


def test_device_auto_is_cpu_here_and_missing_cuda_is_one_line():
    import torch

    from lowrank.errors import UserError
    from lowrank.train.device import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="'device'"):
            resolve_device("cuda")
