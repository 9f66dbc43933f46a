"""The combined Pareto view: every study's points, fronts per panel, one figure."""

from __future__ import annotations

import pandas as pd
import pytest

from lowrank.errors import UserError
from lowrank.report import pareto


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def test_collect_averages_seeds_and_front_keeps_undominated(tmp_path):
    base = {"network": "net", "dataset": "MNIST (real data)"}
    write(
        tmp_path / "tucker/pareto.csv",
        [
            {**base, "method": "tucker", "macs": 10, "params": 5, "test_acc": 0.8, "seed": 0},
            {**base, "method": "tucker", "macs": 10, "params": 5, "test_acc": 0.9, "seed": 1},
            {**base, "method": "tucker", "macs": 30, "params": 9, "test_acc": 0.84, "seed": 0},
        ],
    )
    write(
        tmp_path / "lorita_cnn/pareto.csv",
        [
            {**base, "method": "lsvt", "macs": 20, "params": 6, "test_acc": 0.95},
            {**base, "method": "gsvt", "macs": 5, "params": 2, "test_acc": 0.5},
            {**base, "network": "other", "method": "gsvt", "macs": 1, "params": 1, "test_acc": 0.1},
        ],
    )
    points = pareto.collect(tmp_path)
    tucker10 = points[(points["method"] == "tucker") & (points["macs"] == 10)]
    assert tucker10["test_acc"].item() == pytest.approx(0.85)
    best = pareto.front(points)
    net = best[best["network"] == "net"]
    assert list(net["macs"]) == [5, 10, 20]  # the 30-MAC point (0.84) is dominated
    assert len(best[best["network"] == "other"]) == 1
    fig = pareto.figure(points)
    assert len(fig.axes) >= 4


def test_missing_columns_name_the_file(tmp_path):
    write(tmp_path / "x/pareto.csv", [{"method": "a", "macs": 1}])
    with pytest.raises(UserError, match="x/pareto.csv"):
        pareto.collect(tmp_path)
