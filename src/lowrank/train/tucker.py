"""The Tucker study's first job and what its jobs share: data, networks, resumable fits, costs.

Jobs per network: train dense (here); post-hoc Tucker-2 + fine-tuning (seed 002,
`tucker_posthoc`); the Tucker-factorized network trained from scratch (seed 003,
`tucker_trained`); then one Pareto table for all networks (`tucker_pareto`). Every network
is built by name through the model registry, so adding one is a params change. Each job
writes its JSON last, after resumable runs under runs/<settings>/seed<seed>/, so Snakemake
sees a job finished only when every seed is.
"""

from __future__ import annotations

import importlib
import inspect
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lowrank.atomic import read_json, write_json, write_with
from lowrank.config import params_hash
from lowrank.data.images import ImageSplits, load_images
from lowrank.errors import UserError
from lowrank.measure.flops import ptflops_count
from lowrank.measure.speed import cpu_inference_seconds
from lowrank.models import registry
from lowrank.provenance import stamp
from lowrank.train.curve import CurveProbe
from lowrank.train.loop import TrainConfig, accuracy, train
from lowrank.train.tucker_keys import DENSE_KEYS

# Evaluation batch: the loop's default (5000 images) spends more time in page faults than in
# convolutions on a small CPU (measured: 10k MNIST test images, 1 thread, 3.6 s at 5000 vs
# 0.8 s at 500); results do not depend on it.
EVAL_BATCH = 500


def evaluate(model: nn.Module, xy: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Top-1 accuracy on (x, y) in batches of EVAL_BATCH."""
    return accuracy(model, *xy, EVAL_BATCH)


def settings(cfg: dict, keys: tuple[str, ...]) -> str:
    return params_hash({k: cfg[k] for k in keys})


@dataclass
class Data:
    """The splits one job uses, with what they are (subsets are said, never hidden)."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]  # validation subset: search, curves, model choice
    test: tuple[torch.Tensor, torch.Tensor]
    splits: ImageSplits

    @property
    def description(self) -> dict:
        s = self.splits
        return {
            "dataset": s.name,
            "dataset_label": s.label,
            "dataset_checksum": s.checksum,
            "train_images": len(self.train[0]),
            "val_images": len(self.val[0]),
            "test_images": len(self.test[0]),
            "test_images_available": len(s.test_x),
        }


def load_data(cfg: dict, data_dir: str) -> Data:
    s = load_images(cfg["dataset"], data_dir)

    def first(x, y, n):
        return (x[:n], y[:n]) if n else (x, y)

    return Data(
        first(s.train_x, s.train_y, cfg["train_subset"]),
        first(s.val_x, s.val_y, cfg["val_subset"]),
        first(s.test_x, s.test_y, cfg["test_subset"]),
        s,
    )


def build_network(name: str, splits: ImageSplits) -> nn.Module:
    """Build `name`, passing the data's shape to whichever of the registry's standard keyword
    arguments (num_classes, in_channels, image_size) its builder takes."""
    if name not in registry.BUILDERS:
        registry.build(name)  # raises the one-line error listing the known models
    module, function = registry.BUILDERS[name].split(":")
    builder = getattr(importlib.import_module(module), function)
    offered = {
        "num_classes": splits.num_classes,
        "in_channels": splits.shape[0],
        "image_size": splits.shape[1],
    }
    accepted = inspect.signature(builder).parameters
    return registry.build(name, **{k: v for k, v in offered.items() if k in accepted})


def run_dir(cfg: dict, out: Path, keys: tuple[str, ...], seed: int, what: str) -> Path:
    return out / "runs" / settings(cfg, keys) / f"seed{seed}" / what


def read_result(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path}: missing; run the previous Tucker step first")
    return read_json(path)


def train_cfg(cfg: dict, seed: int, epochs: int, lr: float) -> TrainConfig:
    return TrainConfig(epochs, cfg["batch_size"], lr, cfg["weight_decay"], seed)


def fit(make, tc: TrainConfig, data: Data, folder: Path, cfg: dict, log) -> tuple:
    """Train (resumably) and save the model; reuse a finished run. With `curve_every`, the
    model trains inside a CurveProbe that records validation accuracy every that many steps."""
    record = folder / "run.json"
    if record.is_file():
        model = make()
        model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
        return model.eval(), read_json(record)
    every = cfg["curve_every"]
    model, history = train(
        (lambda: CurveProbe(make(), every, data.val, EVAL_BATCH)) if every else make,
        tc,
        data.train,
        data.val,
        checkpoint=folder / "checkpoint.pt",
        log=log,
    )
    points, eval_seconds = [], 0.0
    if every:
        probe, model = model, model.model
        points, eval_seconds = probe.curve, probe.eval_seconds
        if probe.steps % every == 0:  # the weights after the last step
            points.append({"iteration": probe.steps, "acc": evaluate(model, data.val)})
    write_with(folder / "model.pt", lambda p: torch.save(model.state_dict(), p))
    run = {
        "seed": tc.seed,
        "history": history,
        "curve": points,
        "val_acc": history[-1]["val_acc"] if history else evaluate(model, data.val),
        # survives resumes; excludes the curve's evaluations
        "train_seconds": sum(h["seconds"] for h in history) - eval_seconds,
    }
    write_json(record, run)
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    return model.eval(), run


def curve(run: dict) -> list[dict]:
    return run.get("curve", [])


def iterations_to(run: dict, target: float) -> int | None:
    """The first curve iteration whose validation accuracy reaches `target` (None: never)."""
    return next((p["iteration"] for p in curve(run) if p["acc"] >= target), None)


def train_dense(block: dict, network: str, data_dir: str, out: Path, log=print) -> dict:
    """Train the dense network for every seed; write out/dense.json."""
    cfg = block["tucker"]
    t0 = time.perf_counter()
    data = load_data(cfg, data_dir)
    runs = []
    for seed in cfg["seeds"]:
        folder = run_dir(cfg, out, DENSE_KEYS, seed, "dense")
        model, run = fit(
            lambda: build_network(network, data.splits),
            train_cfg(cfg, seed, cfg["epochs"], cfg["lr"]),
            data,
            folder,
            cfg,
            log,
        )
        run["test_acc"] = evaluate(model, data.test)
        run["model"] = str((folder / "model.pt").relative_to(out))
        runs.append(run)
        log(f"{network} seed {seed}: dense test accuracy {run['test_acc']:.4f}")
    summary = {
        "study": "tucker",
        "network": network,
        **data.description,
        "runs": runs,
        "provenance": stamp(cfg, cfg["seeds"], data.splits.checksum, time.perf_counter() - t0),
    }
    write_json(out / "dense.json", summary)
    return summary


def load_dense(out: Path, network: str, data: Data, seed: int) -> tuple[nn.Module, dict]:
    summary = read_result(out / "dense.json")
    run = next((r for r in summary["runs"] if r["seed"] == seed), None)
    if run is None:
        raise UserError(f"{out / 'dense.json'}: no run for seed {seed}; rerun the dense step")
    model = build_network(network, data.splits)
    model.load_state_dict(torch.load(out / run["model"], weights_only=True))
    return model.eval(), run


def timing(cfg: dict, models: dict[str, nn.Module], data: Data) -> dict[str, dict]:
    """CPU inference time of the models, interleaved, on the first test images."""
    x = data.test[0][: cfg["timing_batch"]]
    return cpu_inference_seconds(models, x, cfg["timing_warmup"], cfg["timing_repeats"])


def cost(model: nn.Module, input_shape) -> dict:
    macs, params = ptflops_count(model, tuple(input_shape))
    return {"macs": macs, "params": params}
