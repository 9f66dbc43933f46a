"""CPU inference time: warm-up runs, then the median of timed repeats, threads stated.

Medians resist the noise of a shared machine better than means; the caller records the
thread count beside every number, and reports ratios of models timed the same way.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


@torch.no_grad()
def cpu_inference_seconds(
    model: nn.Module, x: torch.Tensor, warmup: int = 3, repeats: int = 10
) -> dict:
    """Median, min and max seconds of one forward pass of batch `x` in eval mode."""
    was_training = model.training
    model.eval()
    try:
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    finally:
        model.train(was_training)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeats": repeats,
        "warmup": warmup,
        "batch": len(x),
        "threads": torch.get_num_threads(),
    }
