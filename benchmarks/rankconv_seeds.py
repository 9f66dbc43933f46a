"""Seeds trained per minute: sequential vs vmap ensembles, for the rankconv study's networks.

Not a test: a measurement. For each device present (CPU; CUDA when available) and each
network (the quick scale's network on real MNIST; the slides' network of the paper scale on
CIFAR-shaped random tensors, CUDA only unless --paper-net, since CIFAR-10 is not available
offline and a CPU takes seconds per iteration), it times `--iterations` training iterations
(fastest of `--rounds` interleaved timings, after a warm-up), for sequential training and
for vmap ensembles of several sizes, and converts the time per seed-iteration into seeds
per minute at the scale's iteration count (training only: curve checkpoints and the final
evaluation are excluded).

    PYTHONPATH=src .venv/bin/python benchmarks/rankconv_seeds.py

prints a markdown table and writes benchmarks/results/rankconv_<device>.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from functools import partial
from pathlib import Path

import torch

from lowrank.config import load_params, scale_block
from lowrank.data.images import load_images
from lowrank.models.rankconv_cnn import rankconv_cnn
from lowrank.train.ensemble import Data
from lowrank.train.rankconv import device_name, ensemble_config, time_cases

ROOT = Path(__file__).resolve().parents[1]


def networks(params: dict, device: torch.device, paper_net: bool):
    """(name, cfg block, data, builder(kernel, rank), data label) per network to time."""
    quick = scale_block(params, "quick")["rankconv"]
    splits = load_images(quick["dataset"], ROOT / params["data_dir"])
    data = Data(*(t.to(device) for t in (splits.train_x, splits.train_y) * 2))
    c, size, _ = splits.shape
    yield (
        f"quick network {quick['channels']}, hidden {quick['hidden']}",
        quick,
        data,
        lambda k, r, q=quick: partial(
            rankconv_cnn, k, r, "plain", q["channels"], q["hidden"], q["dropout"], c, size, 10
        ),
        splits.label,
    )
    if device.type == "cuda" or paper_net:
        paper = scale_block(params, "paper")["rankconv"]
        g = torch.Generator().manual_seed(0)
        x = torch.rand(4096, 3, 32, 32, generator=g).to(device)
        y = torch.randint(0, 10, (4096,), generator=g).to(device)
        yield (
            f"slides' network (paper) {paper['channels']}, hidden {paper['hidden']}",
            paper,
            Data(x, y, x, y),
            lambda k, r, p=paper: partial(
                rankconv_cnn, k, r, "plain", p["channels"], p["hidden"], p["dropout"], 3, 32, 10
            ),
            "random CIFAR-shaped tensors (3x32x32)",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per case")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timings; fastest kept")
    parser.add_argument("--groups", default="3,8", help="vmap ensemble sizes to time")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--paper-net", action="store_true", help="also time it on the CPU")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    params = load_params(ROOT / "params.yaml")
    torch.set_num_threads(args.threads or scale_block(params, "quick")["rankconv"]["threads"])
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    groups = [int(g) for g in args.groups.split(",")]
    for device in devices:
        lines = [
            f"# rankconv: seeds trained per minute ({device_name(device)})",
            "",
            f"Machine: {platform.machine()}, torch {torch.__version__}; per case the fastest of "
            f"{args.rounds} interleaved timings of {args.iterations} iterations, after a warm-up "
            "iteration. Seeds per minute = 60 / (seconds per "
            "seed-iteration x the scale's iterations); training only (checkpoints and final "
            "evaluation excluded). On a shared CPU absolute times are inflated by other jobs; "
            "compare the ratios within one table.",
            "",
            "| network | data | K | rank | strategy | seeds | ms per seed-iteration "
            "| seeds per minute | vs sequential |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, cfg, data, make, label in networks(params, device, args.paper_net):
            ecfg = ensemble_config(cfg)
            kmax = max(e["kernel"] for e in cfg["grid"])
            for kernel, rank in ((kmax, None), (kmax, kmax - 1), (kmax, 1)):
                build = make(kernel, rank)
                cases = [("sequential", [0, 1])] + [("vmap", list(range(g))) for g in groups]
                times = time_cases(build, data, ecfg, device, cases, args.iterations, args.rounds)
                base = times[0]
                cases = [(s, len(m), t) for (s, m), t in zip(cases, times, strict=True)]
                for strategy, n, t in cases:
                    per_min = 60 / (t * cfg["iterations"])
                    lines.append(
                        f"| {name} | {label} | {kernel} | {rank or 'dense'} | {strategy} | {n} "
                        f"| {1000 * t:.2f} | {per_min:.2f} | {base / t:.2f}x |"
                    )
                    print(lines[-1], flush=True)
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        lines += [
            "",
            f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at the "
            f"end (1, 5, 15 min): {load} on {os.cpu_count()} cores.",
            "",
        ]
        text = "\n".join(lines)
        print(text)
        out = Path(args.out) / f"rankconv_{device.type}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


if __name__ == "__main__":
    main()
