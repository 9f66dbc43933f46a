"""LSVT/GSVT sweeps of trained CNN/ViT LoRITa models, and Tables 3-4's operating point.

For every seed of the selected weight decay the trained model is collapsed to its dense form
and truncated at each retained fraction; each point records validation and test accuracy,
the realized model's MACs and parameters by ptflops beside the analytic count (which adds the
attention products ptflops cannot see, and the convolution+linear-only count), so every
table can say which convention it uses.

Structured study (Tables 3-4): per seed, the operating point is chosen on validation data
(the smallest MACs within `tolerance` points of the dense model's validation accuracy, over
every LSVT and GSVT point), optionally fine-tuned for `finetune_steps` minibatches, and timed
on the CPU against the dense model (realized speedup beside the MACs ratio).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from lowrank.atomic import read_json, write_json
from lowrank.measure.analytic import analytic
from lowrank.measure.flops import ptflops_count
from lowrank.measure.speed import speedup
from lowrank.methods.lorita import collapse
from lowrank.methods.truncation import (
    gsvt_ranks,
    layer_svds,
    lsvt_ranks,
    retained_fraction,
    truncate,
)
from lowrank.provenance import stamp, write_csv_with_provenance
from lowrank.studies import get_config
from lowrank.train.loop import accuracy
from lowrank.train.lorita_models import (
    eval_sets,
    head,
    load_trained,
    selected_runs,
    study_dataset,
)

RANKERS = {"LSVT": lsvt_ranks, "GSVT": gsvt_ranks}


def _counts(summary: dict, model: nn.Module, ranks: dict | None) -> dict:
    shape = (summary["in_channels"], summary["image_size"], summary["image_size"])
    macs, params = ptflops_count(model, shape)
    exact = analytic(
        summary["model"],
        ranks,
        num_classes=summary["num_classes"],
        in_channels=summary["in_channels"],
        image_size=summary["image_size"],
        **summary["model_kwargs"],
    )
    return {
        "macs": macs,
        "params": params,
        "attention_macs": exact.attention_macs,
        "conv_linear_macs": exact.conv_linear_macs,
        "analytic_agrees": (macs, params) == (exact.macs, exact.params),
    }


def _ranks_text(svds, ranks: dict) -> str:
    return "-".join(str(ranks[d.name]) for d in svds)


def sweep_rows(summary: dict, train_dir: Path, fractions: list[float], val, test) -> list[dict]:
    rows = []
    for run in selected_runs(summary):
        seed = run["seed"]
        dense = collapse(load_trained(train_dir, summary, seed)).eval()
        base = _counts(summary, dense, None)
        base_val, base_test = accuracy(dense, *val), accuracy(dense, *test)
        svds = layer_svds(dense)
        for method, ranker in RANKERS.items():
            for fraction in fractions:
                ranks = ranker(svds, fraction)
                if all(ranks[d.name] == d.full_rank for d in svds):
                    # nothing truncated: the realized model is the dense one (equal outputs
                    # are tested), so its numbers are reused instead of re-measured
                    counts, test_acc, val_acc = dict(base), base_test, base_val
                else:
                    model = truncate(dense, svds, ranks).eval()
                    counts = _counts(summary, model, ranks)
                    test_acc, val_acc = accuracy(model, *test), accuracy(model, *val)
                rows.append(
                    {
                        "config": summary["config"],
                        "model": summary["tag"],
                        "dataset": summary["dataset"],
                        "augmentation": summary["augment"],
                        "n_factors": summary["n_factors"],
                        "seed": seed,
                        "weight_decay": summary["selected_weight_decay"],
                        "method": method,
                        "target_fraction": fraction,
                        "retained_fraction": retained_fraction(svds, ranks),
                        "ranks": _ranks_text(svds, ranks),
                        "val_acc": val_acc,
                        "test_acc": test_acc,
                        "base_val_acc": base_val,
                        "base_test_acc": base_test,
                        "acc_drop": base_test - test_acc,
                        **counts,
                        **{f"base_{k}": v for k, v in base.items() if k != "analytic_agrees"},
                        "base_analytic_agrees": base["analytic_agrees"],
                    }
                )
    return rows


def select_point(rows: pd.DataFrame, tolerance_points: float) -> pd.Series:
    """Smallest MACs whose validation accuracy is within `tolerance_points` of the dense
    model's (ties: the higher validation accuracy). Full rank always qualifies."""
    ok = rows[rows["val_acc"] >= rows["base_val_acc"] - tolerance_points / 100 - 1e-12]
    if ok.empty:  # cannot happen with 1.0 in the grid; fall back to the best validation point
        ok = rows.nlargest(1, "val_acc")
    return ok.sort_values(["macs", "val_acc"], ascending=[True, False]).iloc[0]


def finetune(model: nn.Module, train_xy, steps: int, batch: int, lr: float, seed: int):
    """`steps` Adam minibatches on training images (the paper fine-tunes for one batch)."""
    if steps <= 0:
        return model.eval()
    x, y = train_xy
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=generator)[:batch]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x[idx]), y[idx]).backward()
        optimizer.step()
    return model.eval()


def structured_record(
    summary: dict, train_dir: Path, sweep: pd.DataFrame, cfg: dict, splits, val, test, threads
) -> list[dict]:
    out = []
    train_xy = head(splits.train_x, splits.train_y, cfg.get("train_subset"))
    for seed, rows in sweep.groupby("seed"):
        point = select_point(rows, cfg["tolerance"])
        dense = collapse(load_trained(train_dir, summary, int(seed))).eval()
        svds = layer_svds(dense)
        ranks = RANKERS[point["method"]](svds, float(point["target_fraction"]))
        model = truncate(dense, svds, ranks)
        model = finetune(
            model,
            train_xy,
            cfg["finetune_steps"],
            cfg["batch_size"],
            cfg["finetune_lr"],
            int(seed),
        )
        counts = _counts(summary, model, ranks)
        timing = speedup(
            dense,
            model,
            test[0][: cfg["speed_batch"]],
            threads=threads,
            repeats=cfg["speed_repeats"],
        )
        base_macs, base_params = point["base_macs"], point["base_params"]
        base_cl = point["base_conv_linear_macs"]
        out.append(
            {
                "seed": int(seed),
                "method": point["method"],
                "target_fraction": float(point["target_fraction"]),
                "retained_fraction": float(point["retained_fraction"]),
                "ranks": point["ranks"],
                "dense_val_acc": float(point["base_val_acc"]),
                "selected_val_acc": float(point["val_acc"]),
                "acc_before": float(point["base_test_acc"]),
                "acc_truncated": float(point["test_acc"]),
                "acc_after": accuracy(model, *test),
                "val_acc_after": accuracy(model, *val),
                "finetune_steps": cfg["finetune_steps"],
                "dense_macs": int(base_macs),
                "macs_after": counts["macs"],
                "dense_params": int(base_params),
                "params_after": counts["params"],
                "dense_conv_linear_macs": int(base_cl),
                "conv_linear_macs_after": counts["conv_linear_macs"],
                "flops_drop_pct": 100 * (1 - counts["macs"] / base_macs),
                "conv_linear_flops_drop_pct": 100 * (1 - counts["conv_linear_macs"] / base_cl),
                "params_drop_pct": 100 * (1 - counts["params"] / base_params),
                "flops_ratio": base_macs / counts["macs"],
                "dense_seconds": timing["dense_s"],
                "compressed_seconds": timing["compressed_s"],
                "realized_speedup": timing["speedup"],
                "speed_batch": timing["batch"],
                "speed_threads": threads,
            }
        )
    return out


def sweep_config(
    study: str, block: dict, train_dir: Path, data_dir: str, threads: int = 2
) -> pd.DataFrame:
    """Write train_dir/sweep.csv (and structured.json for the structured study)."""
    t0 = time.perf_counter()
    cfg = block[study]
    summary = read_json(train_dir / "summary.json")
    splits = study_dataset(get_config(study, block, summary["config"]), data_dir)
    if splits.name != summary["dataset"]:
        raise RuntimeError(f"{train_dir}: trained on {summary['dataset']}, now {splits.name}")
    val, test = eval_sets(splits, cfg)
    frame = pd.DataFrame(sweep_rows(summary, train_dir, cfg["retained_fractions"], val, test))
    seeds = sorted(frame["seed"].unique().tolist())
    record = stamp(cfg, seeds, splits.checksum, time.perf_counter() - t0)
    record["dataset_label"] = splits.label
    write_csv_with_provenance(frame, train_dir / "sweep.csv", record)
    if study == "structured":
        points = structured_record(summary, train_dir, frame, cfg, splits, val, test, threads)
        write_json(
            train_dir / "structured.json",
            {
                "config": summary["config"],
                "model": summary["tag"],
                "dataset": summary["dataset"],
                "dataset_label": splits.label,
                "n_factors": summary["n_factors"],
                "tolerance_points": cfg["tolerance"],
                "selection": "smallest MACs within tolerance of the dense validation accuracy",
                "points": points,
                "provenance": stamp(cfg, seeds, splits.checksum, time.perf_counter() - t0),
            },
        )
    return frame
