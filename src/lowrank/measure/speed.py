"""CPU inference time of a model: warm-up, repeats, median, a fixed number of threads.

The median of several timed batches resists the odd slow run on a shared machine; the thread
count is fixed (and restored) so dense and compressed models are timed alike. On a machine
that other jobs share, absolute seconds are inflated: compare ratios measured back to back.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Timing:
    median_s: float
    times_s: tuple[float, ...]
    batch: int
    threads: int

    @property
    def images_per_s(self) -> float:
        return self.batch / self.median_s


@torch.no_grad()
def inference_time(
    model: nn.Module,
    x: torch.Tensor,
    threads: int = 2,
    warmup: int = 2,
    repeats: int = 7,
) -> Timing:
    """Seconds per forward pass of batch `x` (median over `repeats`, after `warmup`)."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    previous = torch.get_num_threads()
    was_training = model.training
    torch.set_num_threads(threads)
    model.eval()
    try:
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
        model.train(was_training)
    return Timing(statistics.median(times), tuple(times), len(x), threads)


def speedup(dense: nn.Module, compressed: nn.Module, x: torch.Tensor, **kwargs) -> dict:
    """Dense and compressed timed alternately (so load changes hit both), and their ratio."""
    rounds = kwargs.pop("rounds", 3)
    dense_t, comp_t = [], []
    for _ in range(rounds):
        dense_t.append(inference_time(dense, x, **kwargs).median_s)
        comp_t.append(inference_time(compressed, x, **kwargs).median_s)
    d, c = statistics.median(dense_t), statistics.median(comp_t)
    return {"dense_s": d, "compressed_s": c, "speedup": d / c, "batch": len(x)}
