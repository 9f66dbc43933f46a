"""CPU timing: interleaved repeats, threads fixed for the measurement and restored."""

from __future__ import annotations

import torch
from torch import nn

from lowrank.measure.speed import cpu_inference_seconds, speedup


def test_timing_fixes_threads_restores_state_and_reports_every_model():
    before = torch.get_num_threads()
    dense = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).train()
    small = nn.Sequential(nn.Linear(64, 4), nn.Linear(4, 10)).train()
    x = torch.randn(32, 64)
    result = cpu_inference_seconds({"dense": dense, "small": small}, x, 1, 5, threads=1)
    assert set(result) == {"dense", "small"}
    for r in result.values():
        assert r["threads"] == 1 and r["repeats"] == 5 and r["batch"] == 32
        assert 0 < r["min_s"] <= r["median_s"] <= r["max_s"]
    assert torch.get_num_threads() == before
    assert dense.training and small.training  # modes restored
    s = speedup(dense, small, x, threads=1, repeats=3)
    assert s["speedup"] == s["dense_s"] / s["compressed_s"] and s["threads"] == 1
