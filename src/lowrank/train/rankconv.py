"""One job of the rank-constrained convolution study: every seed of one (K, rank, variant).

Seeds run sequentially or as vmap ensembles (lowrank.train.ensemble), by the block's
`strategy`; `auto` uses the measurement of `lowrank rankconv-strategy` (one short timing of
both strategies on the device, cached in results/<scale>/rankconv/strategy.json so every
configuration uses the same strategy and their training times stay comparable), or measures
here if that file is absent or was measured on another device. Each finished group of seeds
is written atomically to runs/<settings>/seed<k>.json and skipped on rerun, so a killed job
loses at most the group it was training; summary.json is written last.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch

from lowrank.atomic import read_json, write_json
from lowrank.config import params_hash
from lowrank.data.images import ImageSplits, load_images
from lowrank.errors import UserError
from lowrank.methods.rankconv import conv_parameters
from lowrank.models.registry import build as build_model
from lowrank.provenance import stamp
from lowrank.train.ensemble import Data, EnsembleConfig, train_group

# What one seed's run depends on: a change reruns every seed, while seeds, strategy, group
# size and the report-only keys (target_acc, early_iteration) reuse finished runs.
RUN_KEYS = (
    "dataset",
    "channels",
    "hidden",
    "dropout",
    "iterations",
    "batch_size",
    "optimizer",
    "lr",
    "weight_decay",
    "momentum",
    "eval_every",
    "eval_images",
    "train_eval_images",
    "test_images",
)
REPORT_KEYS = ("target_acc", "early_iteration")


def run_settings_hash(cfg: dict) -> str:
    return params_hash({k: cfg[k] for k in RUN_KEYS})


def rank_label(rank: int | None) -> str:
    return "dense" if rank is None else str(rank)


def parse_rank(text: str | int) -> int | None:
    """'dense' -> None (PyTorch's nn.Conv2d), '3' -> 3."""
    if str(text) == "dense":
        return None
    try:
        return int(text)
    except ValueError:
        raise UserError(f"rank must be an integer or 'dense', got '{text}'") from None


def config_name(kernel: int, rank: int | None, variant: str) -> str:
    return f"k{kernel}_{'dense' if rank is None else f'r{rank}'}_{variant}"


def grid(cfg: dict) -> list[tuple[int, int | None, str]]:
    """Every (kernel, rank or None, variant) of the block; ranks 'all' = 1..K and dense."""
    out = []
    for entry in cfg["grid"]:
        k = entry["kernel"]
        ranks = entry["ranks"]
        ranks = [*range(1, k + 1), "dense"] if ranks == "all" else ranks
        for r in ranks:
            rank = parse_rank(r)
            if rank is not None and rank > k:
                raise UserError(f"params: key 'rankconv.grid': rank {rank} exceeds kernel {k}")
            out += [(k, rank, v) for v in cfg["variants"]]
    return out


def seeds(cfg: dict) -> list[int]:
    return list(range(cfg["seeds"]))


def pick_device(name: str = "auto") -> torch.device:
    """params' top-level `device` (auto | cpu | cuda), as every training job resolves it."""
    from lowrank.train.device import resolve_device

    device = resolve_device(name)
    if device.type == "cuda":
        # deterministic cuBLAS where possible; ops without a deterministic CUDA kernel (some
        # pooling/loss backward passes) warn instead of stopping a GPU job
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def ensemble_config(cfg: dict) -> EnsembleConfig:
    return EnsembleConfig(
        iterations=cfg["iterations"],
        batch_size=cfg["batch_size"],
        optimizer=cfg["optimizer"],
        lr=cfg["lr"],
        weight_decay=cfg["weight_decay"],
        momentum=cfg["momentum"],
        eval_every=cfg["eval_every"],
        eval_images=cfg["eval_images"],
        train_eval_images=cfg["train_eval_images"],
        test_images=cfg["test_images"],
    )


def builder(cfg: dict, splits: ImageSplits, kernel: int, rank: int | None, variant: str):
    """A zero-argument constructor of the network (init_model seeds it per run)."""
    channels, size, _ = splits.shape
    return partial(
        build_model,
        "rankconv_cnn",
        kernel_size=kernel,
        rank=rank,
        variant=variant,
        channels=cfg["channels"],
        hidden=cfg["hidden"],
        dropout=cfg["dropout"],
        in_channels=channels,
        image_size=size,
        num_classes=splits.num_classes,
    )


def load_data(cfg: dict, data_dir: str, device: torch.device) -> tuple[ImageSplits, Data]:
    splits = load_images(cfg["dataset"], data_dir)
    data = Data(
        splits.train_x.to(device),
        splits.train_y.to(device),
        splits.test_x.to(device),
        splits.test_y.to(device),
    )
    return splits, data


def time_cases(
    build: Callable,
    data: Data,
    cfg: EnsembleConfig,
    device: torch.device,
    cases: list[tuple[str, list[int]]],
    iterations: int,
    rounds: int = 3,
) -> list[float]:
    """Seconds per seed-iteration of each (strategy, seeds) case: the fastest of `rounds`
    interleaved timings of `iterations` iterations, after a warm-up, so that a burst of
    other load on a shared CPU does not decide the comparison."""
    quiet = lambda _: None  # noqa: E731
    timed = replace(cfg, iterations=iterations, eval_every=iterations, eval_images=1)
    warm = replace(timed, iterations=1, eval_every=1)
    for strategy, members in cases:
        train_group(build, members, data, warm, strategy, device, quiet, finish=False)
    best = [float("inf")] * len(cases)
    for _ in range(rounds):
        for i, (strategy, members) in enumerate(cases):
            out = train_group(build, members, data, timed, strategy, device, quiet, finish=False)
            seconds = (
                sum(r["group_train_seconds"] for r in out)
                if strategy == "sequential"
                else (out[0]["group_train_seconds"])
            )
            best[i] = min(best[i], seconds / (iterations * len(members)))
    return best


def measure_strategies(
    build: Callable, cfg: dict, data: Data, device: torch.device, log=print
) -> dict[str, float]:
    """Seconds per seed-iteration of each strategy (sequential: one seed; vmap: a group).

    The probe trains throwaway models (seeds far from the study's) and touches no result.
    """
    group = list(range(10**6, 10**6 + min(cfg["group_size"], cfg["seeds"])))
    cases = [("sequential", group[:1]), ("vmap", group)]
    times = time_cases(build, data, ensemble_config(cfg), device, cases, cfg["probe_iterations"])
    timing = dict(zip(("sequential", "vmap"), times, strict=True))
    for strategy, t in timing.items():
        log(f"probe {strategy}: {1000 * t:.2f} ms per seed-iteration")
    return timing


def strategy_record(cfg: dict, build: Callable, data: Data, device: torch.device, log=print):
    """The strategy decision, with how it was made (fixed by params, or measured here)."""
    record = {"device": device_name(device), "requested": cfg["strategy"]}
    if cfg["strategy"] != "auto":
        return {**record, "strategy": cfg["strategy"], "how": "fixed in params"}
    timing = measure_strategies(build, cfg, data, device, log)
    best = min(timing, key=timing.get)
    return {
        **record,
        "strategy": best,
        "how": f"measured: fastest of 3 interleaved timings of {cfg['probe_iterations']} "
        f"iterations per strategy (vmap over {min(cfg['group_size'], cfg['seeds'])} seeds) "
        "on this device",
        "seconds_per_seed_iteration": timing,
        "speedup_vmap_over_sequential": timing["sequential"] / timing["vmap"],
    }


def probe_config(cfg: dict) -> tuple[int, int | None, str]:
    """The configuration the shared probe times: largest kernel, dense, first variant."""
    return max(e["kernel"] for e in cfg["grid"]), None, cfg["variants"][0]


def write_strategy(
    block: dict, data_dir: str, out: Path, log=print, device_param: str = "auto"
) -> dict:
    """`lowrank rankconv --strategy-only`: measure once per scale, for every job to read."""
    cfg = block["rankconv"]
    device = pick_device(device_param)
    splits, data = load_data(cfg, data_dir, device)
    record = strategy_record(cfg, builder(cfg, splits, *probe_config(cfg)), data, device, log)
    record["probe_config"] = config_name(*probe_config(cfg))
    write_json(out, record)
    return record


def resolve_strategy(cfg, build, data, device, strategy_file: Path | None, log) -> dict:
    if cfg["strategy"] == "auto" and strategy_file is not None and strategy_file.is_file():
        cached = read_json(strategy_file)
        if cached.get("device") == device_name(device):
            return {**cached, "how": f"cached: {strategy_file} ({cached['how']})"}
        log(f"{strategy_file} was measured on {cached.get('device')}; measuring here")
    return strategy_record(cfg, build, data, device, log)


def _groups(todo: list[int], strategy: str, size: int) -> list[list[int]]:
    if strategy == "sequential":
        return [[s] for s in todo]
    return [todo[i : i + size] for i in range(0, len(todo), size)]


def train_config(
    block: dict,
    kernel: int,
    rank: int | None,
    variant: str,
    data_dir: str,
    out: Path,
    strategy_file: Path | None = None,
    log=print,
    device_param: str = "auto",
) -> dict:
    """Train every seed of one configuration (resuming finished ones); write out/summary.json."""
    cfg = block["rankconv"]
    if (kernel, rank, variant) not in grid(cfg):
        raise UserError(
            f"params: key 'rankconv': ({config_name(kernel, rank, variant)}) is not in the grid"
        )
    t0 = time.perf_counter()
    device = pick_device(device_param)
    splits, data = load_data(cfg, data_dir, device)
    build = builder(cfg, splits, kernel, rank, variant)
    settings = run_settings_hash(cfg)
    folder = out / "runs" / settings
    runs = {}
    for seed in seeds(cfg):
        path = folder / f"seed{seed}.json"
        if path.is_file():
            runs[seed] = read_json(path)
    todo = [s for s in seeds(cfg) if s not in runs]
    decision = None
    if todo:
        decision = resolve_strategy(cfg, build, data, device, strategy_file, log)
        log(f"{config_name(kernel, rank, variant)}: {len(todo)} seeds, {decision['strategy']}")
        for group in _groups(todo, decision["strategy"], cfg["group_size"]):
            ecfg = ensemble_config(cfg)
            for result in train_group(build, group, data, ecfg, decision["strategy"], device, log):
                result.pop("state")
                result["device"] = device_name(device)
                result["dataset_label"], result["dataset_checksum"] = splits.label, splits.checksum
                write_json(folder / f"seed{result['seed']}.json", result)
                runs[result["seed"]] = result
    ordered = [runs[s] for s in seeds(cfg)]
    model = build()
    summary = {
        "study": "rankconv",
        "kernel": kernel,
        "rank": rank_label(rank),
        "variant": variant,
        "dataset": splits.name,
        "dataset_label": splits.label,
        "dataset_checksum": splits.checksum,
        "train_images": len(splits.train_x),
        "test_images": len(splits.test_x[: cfg["test_images"]]),
        "run_settings": settings,
        "settings": {k: cfg[k] for k in RUN_KEYS},
        "strategy": decision or {"how": "every seed reused from an earlier run"},
        "parameters": sum(p.numel() for p in model.parameters()),
        "conv_parameters": _conv_parameters(model),
        "conv_parameters_per_slice": conv_parameters(kernel, rank),
        "runs": ordered,
        "provenance": stamp(cfg, seeds(cfg), splits.checksum, time.perf_counter() - t0),
    }
    write_json(out / "summary.json", summary)
    return summary


def _conv_parameters(model: torch.nn.Module) -> int:
    """Trainable numbers of the convolution kernels (biases excluded), counted on the model."""
    from lowrank.methods.rankconv import RankConv2d

    total = 0
    for m in model.modules():
        if isinstance(m, RankConv2d):
            total += m.u.numel() + m.v.numel()
        elif isinstance(m, torch.nn.Conv2d):
            total += m.weight.numel()
    return total
