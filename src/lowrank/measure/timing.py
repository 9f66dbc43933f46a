"""CPU inference time: warm-up runs, then the median of timed repeats, threads stated.

Models that are compared are timed interleaved (one pass of each per round), so a burst of
load from other processes on a shared machine hits all of them alike; medians resist the
rest. The thread count is recorded beside every number; report ratios, not absolute times.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


@torch.no_grad()
def cpu_inference_seconds(
    models: dict[str, nn.Module], x: torch.Tensor, warmup: int = 3, repeats: int = 10
) -> dict[str, dict]:
    """Per model: median, min and max seconds of one forward pass of batch `x` (eval mode)."""
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
    finally:
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
            "threads": torch.get_num_threads(),
        }
        for name, t in times.items()
    }
