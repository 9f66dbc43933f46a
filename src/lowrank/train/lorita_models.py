"""One coarse training job of the CNN/ViT LoRITa studies: every weight decay x seed of one
(model, dataset, N), for the studies lorita_cnn, lorita_vit and structured.

As in the FCN study (train/lorita_fcn.py): runs are independent and resumable, named by a hash
of the settings they depend on (so a changed setting never reuses a stale run), the weight
decay with the best mean validation accuracy is selected (the test set selects nothing), and
summary.json is written last, so Snakemake sees the job finished only when every run is.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from lowrank.atomic import read_json, write_json, write_with
from lowrank.config import params_hash
from lowrank.data.images import ImageSplits, load_images, resolve_dataset
from lowrank.errors import UserError
from lowrank.methods.lorita import lorita
from lowrank.models.registry import build
from lowrank.provenance import stamp
from lowrank.studies import TRAIN_KEYS, ModelConfig, get_config
from lowrank.train.device import resolve_device
from lowrank.train.loop import TrainConfig, accuracy, train


def study_dataset(config: ModelConfig, data_dir: str | Path) -> ImageSplits:
    """The requested dataset if its verified files are in data_dir, else the configured
    fallback (quick scale without CIFAR: real MNIST padded to 32x32). The splits carry the
    label of what was really loaded, and every result records it."""
    return load_images(resolve_dataset(config.dataset, config.fallback, data_dir), data_dir)


def make_train_config(cfg: dict, augment: bool, wd: float, seed: int) -> TrainConfig:
    """One run's TrainConfig from the study's params block."""
    return TrainConfig(
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        weight_decay=wd,
        seed=seed,
        optimizer=cfg["optimizer"],
        schedule=None if cfg["schedule"] == "constant" else cfg["schedule"],
        augment=augment,
    )


def model_builder(summary_or_config: dict, n_factors: int):
    """A function building the (factorized) network of a summary's configuration."""
    s = summary_or_config

    def make() -> torch.nn.Module:
        base = build(
            s["model"],
            num_classes=s["num_classes"],
            in_channels=s["in_channels"],
            image_size=s["image_size"],
            **s["model_kwargs"],
        )
        return lorita(base, n_factors)

    return make


def run_settings_hash(cfg: dict, config: ModelConfig, dataset: str) -> str:
    settings = {k: cfg[k] for k in TRAIN_KEYS if k != "augment"}
    settings.update(
        model=config.model, kwargs=config.kwargs, augment=config.augment, dataset=dataset
    )
    return params_hash(settings)


def run_dir(out: Path, settings: str, weight_decay: float, seed: int) -> Path:
    return out / "runs" / settings / f"wd{weight_decay:g}_seed{seed}"


def selected_runs(summary: dict) -> list[dict]:
    """The runs at the weight decay chosen on validation data."""
    return [r for r in summary["runs"] if r["weight_decay"] == summary["selected_weight_decay"]]


def load_trained(out: Path, summary: dict, seed: int) -> torch.nn.Module:
    """The trained (factorized) model of `seed` at the selected weight decay, in eval mode."""
    model = model_builder(summary, summary["n_factors"])()
    path = run_dir(out, summary["run_settings"], summary["selected_weight_decay"], seed)
    model.load_state_dict(torch.load(path / "model.pt", weights_only=True))
    return model.eval()


def head(x: torch.Tensor, y: torch.Tensor, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n images (quick scales), or all of them."""
    return (x[:n], y[:n]) if n else (x, y)


def eval_sets(splits: ImageSplits, cfg: dict) -> tuple[tuple, tuple]:
    """Validation and test images every accuracy of these studies is measured on."""
    n = cfg.get("eval_subset")
    return head(splits.val_x, splits.val_y, n), head(splits.test_x, splits.test_y, n)


def train_config(
    study: str,
    block: dict,
    config_id: str,
    n_factors: int,
    data_dir: str,
    out: Path,
    device: str = "auto",
    log=print,
) -> dict:
    """Train all runs of one (configuration, N) and write out/summary.json."""
    cfg = block[study]
    config = get_config(study, block, config_id)
    if n_factors not in cfg["factors"]:
        raise UserError(f"params: key '{study}.factors' does not include {n_factors}")
    t0 = time.perf_counter()
    splits = study_dataset(config, data_dir)
    train_xy = head(splits.train_x, splits.train_y, cfg.get("train_subset"))
    val_xy, test_xy = eval_sets(splits, cfg)
    settings = run_settings_hash(cfg, config, splits.name)
    base = {
        "study": study,
        "config": config.id,
        "model": config.model,
        "tag": config.tag,
        "model_kwargs": config.kwargs,
        "n_factors": n_factors,
        "num_classes": splits.num_classes,
        "in_channels": splits.shape[0],
        "image_size": splits.shape[1],
    }
    runs = []
    for wd in cfg["weight_decays"]:
        for seed in cfg["seeds"]:
            folder = run_dir(out, settings, wd, seed)
            record = folder / "run.json"
            if record.is_file():
                runs.append(read_json(record))
                continue
            log(f"{config.id} N={n_factors} wd={wd:g} seed={seed} on {splits.label}")
            tc = make_train_config(cfg, config.augment, wd, seed)
            model, history = train(
                model_builder(base, n_factors),
                tc,
                train_xy,
                val_xy,
                checkpoint=folder / "checkpoint.pt",
                log=log,
                device=resolve_device(device),
            )
            model = model.cpu().eval()
            write_with(folder / "model.pt", lambda p, m=model: torch.save(m.state_dict(), p))
            run = {
                "weight_decay": wd,
                "seed": seed,
                "history": history,
                "val_acc": history[-1]["val_acc"],
                "test_acc": accuracy(model, *test_xy),
                "train_seconds": sum(h["seconds"] for h in history),
                "train_params": sum(p.numel() for p in model.parameters()),
            }
            write_json(record, run)
            (folder / "checkpoint.pt").unlink(missing_ok=True)
            runs.append(run)
    mean_val = {
        wd: sum(r["val_acc"] for r in runs if r["weight_decay"] == wd) / len(cfg["seeds"])
        for wd in cfg["weight_decays"]
    }
    summary = {
        **base,
        "requested_dataset": config.dataset,
        "dataset": splits.name,
        "dataset_label": splits.label,
        "augment": config.augment,
        **{k: cfg[k] for k in TRAIN_KEYS if k != "augment"},
        "train_images": len(train_xy[0]),
        "val_images": len(val_xy[0]),
        "test_images": len(test_xy[0]),
        "run_settings": settings,
        "selected_weight_decay": max(cfg["weight_decays"], key=lambda wd: mean_val[wd]),
        "mean_val_acc_by_weight_decay": mean_val,
        "runs": runs,
        "device": str(resolve_device(device)),
        "provenance": stamp(cfg, cfg["seeds"], splits.checksum, time.perf_counter() - t0),
    }
    write_json(out / "summary.json", summary)
    return summary
