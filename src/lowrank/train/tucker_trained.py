"""The course project's Tucker-factorized network trained from scratch (seed 003): ranks from
HOOI of the trained dense kernels, accuracy, iterations to a validation target against the
dense run, MACs/parameters of the realized layers, the project's parameter formula, and the
cost of its naive sum-of-rank-1 evaluation."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from lowrank.atomic import write_json
from lowrank.measure.speed import cpu_inference_seconds
from lowrank.methods import tucker
from lowrank.methods.tucker_conv import (
    TuckerConv2d,
    hooi_ranks,
    hooi_spectra,
    naive_forward,
    rank1_kernels,
    realize,
    tucker_conv_params,
    tuckerize,
)
from lowrank.provenance import stamp
from lowrank.train.tucker import (
    build_network,
    cost,
    curve,
    evaluate,
    fit,
    iterations_to,
    load_data,
    load_dense,
    run_dir,
    timing,
    train_cfg,
)
from lowrank.train.tucker_keys import DENSE_KEYS


def _naive_timing(cfg: dict, layer: TuckerConv2d, conv: nn.Conv2d, x: torch.Tensor) -> dict:
    """Seconds of the dense convolution and of the project's sum of N'C'D' rank-1
    convolutions on the same input (medians), or None above the term cap."""
    p, q, r = layer.ranks
    if p * q * r > cfg["naive_max_terms"]:
        return {}
    reps = {"warmup": 1, "repeats": max(3, cfg["timing_repeats"] // 2)}

    kernels = rank1_kernels(layer).detach()

    class Naive(nn.Module):
        def forward(self, z):
            return naive_forward(layer, z, kernels)

    t = cpu_inference_seconds({"dense": conv, "naive": Naive()}, x, **reps)
    return {
        "dense_s": t["dense"]["median_s"],
        "naive_s": t["naive"]["median_s"],
        "terms": p * q * r,
    }


def trained(block: dict, network: str, data_dir: str, out: Path, log=print) -> dict:
    """Choose (N', C', D') from HOOI of each seed's dense kernels, train the Tucker-factorized
    network from scratch with the dense budget, measure accuracy, convergence and cost."""
    cfg = block["tucker"]
    t0 = time.perf_counter()
    data = load_data(cfg, data_dir)
    shape = data.splits.shape
    records = []
    for seed in cfg["seeds"]:
        dense, dense_run = load_dense(out, network, data, seed)
        shapes = tucker.layer_shapes(dense, shape)
        convs = dict(tucker.eligible_convs(dense))
        spectra = {n: hooi_spectra(c.weight.detach().double().numpy()) for n, c in convs.items()}
        ranks = {n: hooi_ranks(s, cfg["hooi_energy"]) for n, s in spectra.items()}
        folder = run_dir(cfg, out, DENSE_KEYS + ("hooi_energy",), seed, "trained")
        model, run = fit(
            lambda r=ranks: tuckerize(build_network(network, data.splits), r),
            train_cfg(cfg, seed, cfg["epochs"], cfg["lr"]),
            data,
            folder,
            cfg,
            log,
        )
        plain = realize(model)
        x_time = data.test[0][: cfg["timing_batch"]]
        layers = []
        for name, (p, q, r) in ranks.items():
            conv, s, layer = convs[name], shapes[name], model.get_submodule(name)
            n, c, d2 = conv.out_channels, conv.in_channels, conv.kernel_size[0] ** 2
            layer_input = _layer_input(dense, name, x_time)
            layers.append(
                {
                    "layer": name,
                    "in_channels": c,
                    "out_channels": n,
                    "kernel": list(conv.kernel_size),
                    "ranks": [p, q, r],
                    "full_ranks": [n, c, d2],
                    "hooi_sv_scaled": spectra[name]["scaled"],
                    "hooi_sv_factor": spectra[name]["factor"],
                    "dense": cost(conv, s["input"]),
                    "realized": cost(plain.get_submodule(name), s["input"]),
                    "params_counted": sum(v.numel() for v in layer.parameters()),
                    "params_analytic": tucker_conv_params(
                        n, c, d2, (p, q, r), conv.bias is not None
                    ),
                    "naive": _naive_timing(cfg, layer, conv, layer_input),
                }
            )
        dense_iters = iterations_to(dense_run, cfg["target_acc"])
        tucker_iters = iterations_to(run, cfg["target_acc"])
        times = timing(cfg, {"dense": dense, "tucker": plain}, data)
        records.append(
            {
                "seed": seed,
                "dense_test_acc": dense_run["test_acc"],
                "test_acc": evaluate(model, data.test),
                "dense_iters_to_target": dense_iters,
                "iters_to_target": tucker_iters,
                "dense_curve": curve(dense_run),
                "curve": curve(run),
                "dense_train_seconds": dense_run["train_seconds"],
                "train_seconds": run["train_seconds"],
                "dense_cost": cost(dense, shape),
                "tucker_cost": cost(plain, shape),
                "dense_time": times["dense"],
                "tucker_time": times["tucker"],
                "layers": layers,
            }
        )
        log(
            f"{network} seed {seed} trained Tucker ranks {ranks}: test accuracy "
            f"{records[-1]['test_acc']:.4f} (dense {dense_run['test_acc']:.4f}); iterations to "
            f"{cfg['target_acc']}: {tucker_iters} vs dense {dense_iters}"
        )
    summary = {
        "study": "tucker_trained",
        "network": network,
        **data.description,
        "target_acc": cfg["target_acc"],
        "hooi_energy": cfg["hooi_energy"],
        "records": records,
        "provenance": stamp(cfg, cfg["seeds"], data.splits.checksum, time.perf_counter() - t0),
    }
    write_json(out / "trained.json", summary)
    return summary


@torch.no_grad()
def _layer_input(model: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """The input that layer `name` of `model` sees for batch `x`."""
    seen = {}
    hook = model.get_submodule(name).register_forward_hook(
        lambda m, i, o: seen.__setitem__("x", i[0])
    )
    try:
        model(x)
    finally:
        hook.remove()
    return seen["x"]
