"""Post-hoc Tucker-2 of every eligible convolution with each rank rule, then fine-tuning
(seed 002): accuracy before/after decomposition and after fine-tuning, ptflops MACs and
parameters of the realized modules (per layer and per model), CPU inference time."""

from __future__ import annotations

import copy
import time
from pathlib import Path

from torch import nn

from lowrank.atomic import write_json
from lowrank.methods import tucker
from lowrank.provenance import stamp
from lowrank.train.tucker import (
    cost,
    evaluate,
    fit,
    load_data,
    load_dense,
    run_dir,
    timing,
    train_cfg,
)
from lowrank.train.tucker_keys import DENSE_KEYS, FINETUNE_KEYS, POSTHOC_KEYS


def posthoc(block: dict, network: str, data_dir: str, out: Path, log=print) -> dict:
    """Decompose each seed's dense network with every rank rule, fine-tune, measure."""
    cfg = block["tucker"]
    t0 = time.perf_counter()
    data = load_data(cfg, data_dir)
    shape = data.splits.shape
    records = []
    for seed in cfg["seeds"]:
        dense, dense_run = load_dense(out, network, data, seed)
        shapes = tucker.layer_shapes(dense, shape)
        convs = dict(tucker.eligible_convs(dense))
        dense_cost = cost(dense, shape)
        dense_acc = evaluate(dense, data.test)
        tuned_models = {}

        def val_acc(m: nn.Module) -> float:
            return evaluate(m, data.val)

        dense_val = val_acc(dense)
        sens = tucker.sensitivity(dense, val_acc, cfg["sensitivity_fraction"], dense_val)
        for rule in cfg["rank_rules"]:
            trace = None
            if rule == "search":
                ranks, trace = tucker.search_ranks(
                    dense, val_acc, cfg["search_threshold"], cfg["search_step"], log, dense_val
                )
            else:
                ranks = tucker.energy_ranks(dense, cfg["energy"])
            decomposed = tucker.decompose(dense, ranks)
            acc_decomposed = evaluate(decomposed, data.test)
            folder = run_dir(cfg, out, DENSE_KEYS + FINETUNE_KEYS, seed, f"finetune_{rule}")
            tuned, tune_run = fit(
                lambda d=decomposed: copy.deepcopy(d),
                train_cfg(cfg, seed, cfg["finetune_epochs"], cfg["finetune_lr"]),
                data,
                folder,
                {**cfg, "curve_every": 0},
                log,
            )
            layers = _layers(ranks, convs, shapes, tuned, sens, trace)
            records.append(
                {
                    "seed": seed,
                    "rule": rule,
                    "dense_test_acc": dense_acc,
                    "dense_val_acc": dense_val,
                    "decomposed_test_acc": acc_decomposed,
                    "decomposed_val_acc": val_acc(decomposed),
                    "finetuned_test_acc": evaluate(tuned, data.test),
                    "finetune": tune_run,
                    "dense_cost": dense_cost,
                    "tucker_cost": cost(tuned, shape),
                    "layers": layers,
                }
            )
            tuned_models[rule] = tuned
            log(
                f"{network} seed {seed} {rule}: test accuracy {dense_acc:.4f} dense, "
                f"{acc_decomposed:.4f} decomposed, {records[-1]['finetuned_test_acc']:.4f} tuned"
            )
        times = timing(cfg, {"dense": dense, **tuned_models}, data)
        for rec in records:
            if rec["seed"] == seed:
                rec["dense_time"], rec["tucker_time"] = times["dense"], times[rec["rule"]]
    summary = {
        "study": "tucker_posthoc",
        "network": network,
        **data.description,
        "settings": {k: cfg[k] for k in POSTHOC_KEYS},
        "records": records,
        "provenance": stamp(cfg, cfg["seeds"], data.splits.checksum, time.perf_counter() - t0),
    }
    write_json(out / "posthoc.json", summary)
    return summary


def _layers(ranks, convs, shapes, tuned: nn.Module, sens: dict, trace) -> list[dict]:
    """Per decomposed layer: ranks, sensitivity, ptflops cost of the dense conv and of its
    realized Tucker-2 form (at the layer's input shape) beside the analytic counts."""
    layers = []
    for name, (r_out, r_in) in ranks.items():
        conv, s = convs[name], shapes[name]
        layers.append(
            {
                "layer": name,
                "in_channels": conv.in_channels,
                "out_channels": conv.out_channels,
                "kernel": list(conv.kernel_size),
                "r_out": r_out,
                "r_in": r_in,
                "sensitivity": sens[name],
                "dense": cost(conv, s["input"]),
                "tucker": cost(tuned.get_submodule(name), s["input"]),
                "analytic_macs": tucker.tucker2_macs(
                    conv, r_out, r_in, s["input"][1:], s["out_hw"]
                ),
                "analytic_params": tucker.tucker2_params(conv, r_out, r_in),
                "search_trace": trace[name] if trace else None,
            }
        )
    return layers
