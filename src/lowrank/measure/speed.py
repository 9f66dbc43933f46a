"""CPU inference time: warm-up runs, then the median of timed repeats, threads fixed and stated.

Models that are compared are timed interleaved (one pass of each per round), so a burst of
load from other processes on a shared machine hits all of them alike; medians resist the
rest. The thread count is fixed for the measurement (and restored) and recorded beside every
number; on a shared machine absolute seconds are inflated, so reports show ratios.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


@torch.no_grad()
def cpu_inference_seconds(
    models: dict[str, nn.Module],
    x: torch.Tensor,
    warmup: int = 3,
    repeats: int = 10,
    threads: int | None = None,
) -> dict[str, dict]:
    """Per model: median, min and max seconds of one forward pass of batch `x` (eval mode)."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    modes = {name: m.training for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    try:
        for m in models.values():
            m.eval()
        for _ in range(warmup):
            for m in models.values():
                m(x)
        for _ in range(repeats):
            for name, m in models.items():
                t0 = time.perf_counter()
                m(x)
                times[name].append(time.perf_counter() - t0)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
        for name, m in models.items():
            m.train(modes[name])
    return {
        name: {
            "median_s": statistics.median(t),
            "min_s": min(t),
            "max_s": max(t),
            "repeats": repeats,
            "warmup": warmup,
            "batch": len(x),
            "threads": used,
        }
        for name, t in times.items()
    }


def speedup(
    dense: nn.Module, compressed: nn.Module, x: torch.Tensor, threads: int = 2, repeats: int = 7
) -> dict:
    """Dense and compressed timed interleaved, and the realized speedup dense / compressed."""
    t = cpu_inference_seconds({"dense": dense, "compressed": compressed}, x, 2, repeats, threads)
    d, c = t["dense"]["median_s"], t["compressed"]["median_s"]
    return {"dense_s": d, "compressed_s": c, "speedup": d / c, "batch": len(x), "threads": threads}
