"""One coarse training job: every weight decay x seed of one (FCN depth, N) configuration.

Runs are independent and each is resumable; the job selects the weight decay with the best
mean validation accuracy (the test set selects nothing) and writes summary.json last, so
Snakemake sees the job finished only when every run is. With `search_seeds` the weight-decay
grid is searched on those seeds only and the other seeds train at the selected value (tune on
some seeds, report over all: the grid's cost does not grow with the seed count).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from lowrank.atomic import read_json, write_json, write_with
from lowrank.config import params_hash
from lowrank.data.mnist import Splits, load_mnist
from lowrank.methods.lorita import lorita
from lowrank.models.fcn import fcn
from lowrank.provenance import stamp
from lowrank.train.loop import TrainConfig, accuracy, train


def build_model(depth: int, width: int, n_factors: int, batchnorm: bool = False) -> torch.nn.Module:
    return lorita(fcn(depth, width, batchnorm=batchnorm), n_factors)


# The settings a single run depends on; seeds and weight decays name its directory instead,
# so adding a seed reuses the finished ones and a changed setting never reuses a stale run.
RUN_KEYS = ("width", "epochs", "batch_size", "lr", "train_subset")
# Optional keys (with their defaults); they enter the hash only when set to a non-default
# value, so runs made before the key existed keep their directory.
OPTIONAL_RUN_KEYS = {"schedule": None, "warmup": 0.25, "batchnorm": False}


def for_model(cfg: dict, depth: int, n_factors: int) -> dict:
    """The block with the learning rate this model trains at: `lr_by_model` (e.g.
    {"fcn10_N3": 5e-4}) overrides `lr` for the models it names, the rest keep `lr`."""
    override = (cfg.get("lr_by_model") or {}).get(f"fcn{depth}_N{n_factors}")
    return cfg if override is None else {**cfg, "lr": override}


def run_settings(cfg: dict) -> dict:
    """Every setting one run depends on, optional keys at their defaults when absent."""
    out = {k: cfg[k] for k in RUN_KEYS}
    out.update({k: cfg.get(k, default) for k, default in OPTIONAL_RUN_KEYS.items()})
    return out


def run_settings_hash(cfg: dict) -> str:
    settings = {k: cfg[k] for k in RUN_KEYS}
    settings.update({k: cfg[k] for k, d in OPTIONAL_RUN_KEYS.items() if k in cfg and cfg[k] != d})
    return params_hash(settings)


def train_config_of(cfg: dict, weight_decay: float, seed: int) -> TrainConfig:
    """The loop settings of one run of the FCN study."""
    settings = run_settings(cfg)
    return TrainConfig(
        cfg["epochs"],
        cfg["batch_size"],
        cfg["lr"],
        weight_decay,
        seed,
        schedule=settings["schedule"],
        warmup=settings["warmup"],
    )


def run_dir(out: Path, settings: str, weight_decay: float, seed: int) -> Path:
    return out / "runs" / settings / f"wd{weight_decay:g}_seed{seed}"


def load_trained(out: Path, summary: dict, seed: int) -> torch.nn.Module:
    """Rebuild the trained (factorized) model of `seed` at the selected weight decay."""
    model = build_model(
        summary["depth"], summary["width"], summary["n_factors"], summary.get("batchnorm", True)
    )
    path = run_dir(out, summary["run_settings"], summary["selected_weight_decay"], seed)
    path = path / "model.pt"
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()


def selected_runs(summary: dict) -> list[dict]:
    """The runs at the weight decay chosen on validation data: what every table reports."""
    return [r for r in summary["runs"] if r["weight_decay"] == summary["selected_weight_decay"]]


def subset(splits: Splits, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n training images (smoke scale), or all of them."""
    return (splits.train_x[:n], splits.train_y[:n]) if n else (splits.train_x, splits.train_y)


def search_seeds(cfg: dict) -> list[int]:
    """The seeds the weight-decay grid is searched on: `search_seeds`, else every seed."""
    chosen = cfg.get("search_seeds")
    return list(cfg["seeds"]) if chosen is None else [s for s in cfg["seeds"] if s in chosen]


def select_weight_decay(cfg: dict, runs: list[dict]) -> tuple[float, dict]:
    """The weight decay with the best mean validation accuracy over the search runs."""
    mean_val = {}
    for wd in cfg["weight_decays"]:
        accs = [r["val_acc"] for r in runs if r["weight_decay"] == wd]
        mean_val[wd] = sum(accs) / len(accs)
    return max(cfg["weight_decays"], key=lambda wd: mean_val[wd]), mean_val


def train_config(
    block: dict,
    depth: int,
    n_factors: int,
    data_dir: str,
    out: Path,
    log=print,
    only_seed: int | None = None,
) -> dict | None:
    """Train all runs of one configuration and write out/summary.json (with `only_seed`:
    only that seed's runs, plus the search runs it needs to know its weight decay; no
    summary, return None)."""
    cfg = for_model(block["lorita_fcn"], depth, n_factors)
    t0 = time.perf_counter()
    splits = load_mnist(data_dir)
    train_xy = subset(splits, cfg.get("train_subset"))
    settings = run_settings_hash(cfg)
    chosen = run_settings(cfg)

    def run(wd: float, seed: int) -> dict:
        return one_run(cfg, (depth, n_factors), settings, out, splits, train_xy, wd, seed, log)

    search = search_seeds(cfg)
    others = [s for s in cfg["seeds"] if s not in search]
    if only_seed is not None and only_seed in search:
        for wd in cfg["weight_decays"]:
            run(wd, only_seed)
        return None
    runs = [run(wd, s) for wd in cfg["weight_decays"] for s in search]
    selected, mean_val = select_weight_decay(cfg, runs)
    if only_seed is not None:
        run(selected, only_seed)
        return None
    runs += [run(selected, s) for s in others]
    summary = {
        "study": "lorita_fcn",
        "dataset": "MNIST",
        "depth": depth,
        "n_factors": n_factors,
        "width": cfg["width"],
        "epochs": cfg["epochs"],
        "batch_size": cfg["batch_size"],
        "lr": cfg["lr"],
        "schedule": chosen["schedule"],
        "batchnorm": chosen["batchnorm"],
        "train_images": len(train_xy[0]),
        "run_settings": settings,
        "search_seeds": search,
        "selected_weight_decay": selected,
        "mean_val_acc_by_weight_decay": mean_val,
        "runs": runs,
        "provenance": stamp(cfg, cfg["seeds"], splits.checksum, time.perf_counter() - t0),
    }
    write_json(out / "summary.json", summary)
    return summary


def one_run(
    cfg: dict,
    model: tuple[int, int],
    settings: str,
    out: Path,
    splits: Splits,
    train_xy: tuple[torch.Tensor, torch.Tensor],
    wd: float,
    seed: int,
    log=print,
) -> dict:
    """Train one (weight decay, seed) run of the (depth, N) `model`, or reuse its finished
    record; an interrupted run resumes from its checkpoint."""
    depth, n_factors = model
    folder = run_dir(out, settings, wd, seed)
    record = folder / "run.json"
    if record.is_file():
        return read_json(record)
    log(f"FCN-{depth} N={n_factors} wd={wd:g} seed={seed}")
    batchnorm = run_settings(cfg)["batchnorm"]
    trained, history = train(
        lambda: build_model(depth, cfg["width"], n_factors, batchnorm),
        train_config_of(cfg, wd, seed),
        train_xy,
        (splits.val_x, splits.val_y),
        checkpoint=folder / "checkpoint.pt",
        log=log,
    )
    write_with(folder / "model.pt", lambda p: torch.save(trained.state_dict(), p))
    result = {
        "weight_decay": wd,
        "seed": seed,
        "history": history,
        "val_acc": history[-1]["val_acc"],
        "test_acc": accuracy(trained, splits.test_x, splits.test_y),
        "train_seconds": sum(h["seconds"] for h in history),  # survives resumes
    }
    write_json(record, result)
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    return result
