"""`lowrank bench toeplitz`: inference time of the trained 2-conv CNN on the test images, three
ways (PyTorch; NumPy with rank-n Toeplitz convolutions, n = 1..5; NumPy with the naive loop),
and the seed's Fig. 2 micro-benchmark (loop convolution vs one large matmul).

Protocol: threads fixed for torch and for NumPy's BLAS (set through the OpenBLAS library that
NumPy loaded, read back and recorded); one untimed warm-up pass per method; then `repeats`
timed passes, interleaved across methods so background load hits all methods alike; median
and spread (quartiles, min, max) of the seconds for all test images. Two protocols:
`per_image` passes images one at a time as the seed does (Sec. XII); `batched` passes chunks.
The naive loop, and per-image passes when `per_image_images` is set, time a prefix of the
test images and scale linearly to all of them (`extrapolated` says so). Absolute seconds
depend on the machine and its load; the ratios to PyTorch are what compare across machines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lowrank.data.images import ImageSplits
from lowrank.measure.threads import set_blas_threads
from lowrank.methods.toeplitz import conv_reg
from lowrank.methods.toeplitz_net import NumpyNet
from lowrank.provenance import stamp, write_csv_with_provenance
from lowrank.sweep.toeplitz_sweep import dataset, read_summary
from lowrank.train.toeplitz import load_epoch


def _spread(seconds: list[float], scale: float) -> dict:
    s = np.asarray(seconds) * scale
    return {
        "median_s": float(np.median(s)),
        "q1_s": float(np.percentile(s, 25)),
        "q3_s": float(np.percentile(s, 75)),
        "min_s": float(s.min()),
        "max_s": float(s.max()),
    }


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _passes(model, nets: dict, x: torch.Tensor, protocol: str, chunk: int) -> dict:
    """One callable per (method, rank): a full pass over `x` in the given protocol."""
    xn = x.numpy()
    step = 1 if protocol == "per_image" else chunk

    def torch_pass():
        with torch.inference_mode():
            for i in range(0, len(x), step):
                model(x[i : i + step])

    def numpy_pass(net):
        def run():
            for i in range(0, len(xn), step):
                net.logits(xn[i : i + step])

        return run

    out = {("torch", "full"): torch_pass}
    out.update({key: numpy_pass(net) for key, net in nets.items()})
    return out


def time_methods(
    model: torch.nn.Sequential,
    x: torch.Tensor,
    ranks: list[int],
    bench: dict,
    log=print,
) -> pd.DataFrame:
    """Seconds to infer all of `x` per protocol, method and rank (see the module docstring)."""
    hw = tuple(x.shape[2:])
    total = len(x)
    nets = {("numpy_toeplitz", r): NumpyNet(model, "numpy_toeplitz", r, hw) for r in ranks}
    naive = NumpyNet(model, "naive", None, hw)
    rows = []
    for protocol in ("batched", "per_image"):
        n_main = bench["per_image_images"] if protocol == "per_image" else None
        n_main = min(n_main or total, total)
        passes = _passes(model, nets, x[:n_main], protocol, bench["chunk"])
        n_naive = min(bench["naive_images"], total)
        passes[("naive", "full")] = _passes(
            model, {("naive", "full"): naive}, x[:n_naive], protocol, bench["chunk"]
        )[("naive", "full")]
        timed = {key: n_naive if key[0] == "naive" else n_main for key in passes}
        warm = min(bench["warmup_images"], total)
        warmups = _passes(model, {**nets, ("naive", "full"): naive}, x[:warm], protocol, 64)
        for key in passes:
            warmups[key]()
        seconds: dict = {key: [] for key in passes}
        for rep in range(bench["repeats"]):
            for key, fn in passes.items():  # interleaved: drift hits every method alike
                seconds[key].append(_timed(fn))
            log(f"{protocol}: repeat {rep + 1}/{bench['repeats']} done")
        for (method, rank), values in seconds.items():
            rows.append(
                {
                    "protocol": protocol,
                    "method": method,
                    "rank": rank,
                    "images": total,
                    "images_timed": timed[(method, rank)],
                    "extrapolated": timed[(method, rank)] < total,
                    "repeats": len(values),
                    **_spread(values, total / timed[(method, rank)]),
                }
            )
    frame = pd.DataFrame(rows)
    torch_median = frame[frame["method"] == "torch"].set_index("protocol")["median_s"]
    frame["ratio_to_torch"] = frame["median_s"] / frame["protocol"].map(torch_median)
    return frame


def microbench(sizes: dict, repeats: int, seed: int = 0) -> pd.DataFrame:
    """Fig. 2 of the seed: `conv_reg` with a 3x3 filter on an n x n matrix vs one float64
    (m x k) @ (k x n) matmul; the seed's sizes are n = 1002 and 10000 x 1000 x 10000."""
    rng = np.random.default_rng(seed)
    n = sizes["naive_size"]
    a, f = rng.standard_normal((n, n)), rng.standard_normal((3, 3))
    m, k, p = sizes["matmul"]
    left, right = rng.standard_normal((m, k)), rng.standard_normal((k, p))
    conv_reg(f, a[:8, :8])  # warm-up
    np.matmul(left[:64], right)
    naive = [_timed(lambda: conv_reg(f, a)) for _ in range(repeats)]
    mm = [_timed(lambda: np.matmul(left, right)) for _ in range(repeats)]
    rows = [
        {
            "op": "naive_loop_conv",
            "A": f"{n}x{n}",
            "F": "3x3",
            "shape": "",
            "multiplies": 9 * (n - 2) ** 2,
            "repeats": repeats,
            **_spread(naive, 1.0),
        },
        {
            "op": "matmul",
            "A": "",
            "F": "",
            "shape": f"{m}x{k}x{p}",
            "multiplies": m * k * p,
            "repeats": repeats,
            **_spread(mm, 1.0),
        },
    ]
    return pd.DataFrame(rows)


def bench_toeplitz(block: dict, data: str | ImageSplits, out: Path, log=print) -> pd.DataFrame:
    """Time the final-epoch model of the first seed; write timing.csv and microbench.csv."""
    cfg = block["toeplitz"]
    bench = cfg["bench"]
    t0 = time.perf_counter()
    torch.set_num_threads(bench["threads"])
    blas = set_blas_threads(bench["threads"])
    summary = read_summary(out)
    splits = dataset(cfg, data)
    seed = cfg["seeds"][0]
    model = load_epoch(cfg, splits, out / summary["run_dirs"][str(seed)], cfg["epochs"])
    x = splits.test_x[: cfg["test_images"]].contiguous()
    log(
        f"timing on {len(x)} test images of {splits.label}; torch threads "
        f"{torch.get_num_threads()}; BLAS {blas}"
    )
    timing = time_methods(model, x, cfg["ranks"], bench, log)
    timing.insert(0, "dataset", splits.label)
    timing["seed"] = seed
    micro = microbench(bench["microbench"], bench["repeats"])
    record = stamp(cfg, [seed], splits.checksum, time.perf_counter() - t0)
    record.update(
        {
            "dataset_label": splits.label,
            "torch_threads": torch.get_num_threads(),
            "blas_threads": blas,
            "epoch": cfg["epochs"],
            "note": "absolute seconds depend on the machine and its load; compare ratios",
        }
    )
    write_csv_with_provenance(timing, out / "timing.csv", record)
    write_csv_with_provenance(micro, out / "microbench.csv", record)
    return timing
