"""One accuracy-vs-cost picture of every method, from each study's results/<scale>/*/pareto.csv.

A study that produces compressed models writes `pareto.csv` with one row per realized model:
method, network, dataset, macs, params, test_acc (and optionally seed). Points of different
networks or datasets are never mixed: the figure has one panel per (network, dataset).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from lowrank.errors import UserError  # noqa: E402

COLUMNS = ("method", "network", "dataset", "macs", "params", "test_acc")


def collect(results: Path) -> pd.DataFrame:
    """Every study's points, seed-averaged per (method, network, dataset, macs, params)."""
    frames = []
    for path in sorted(results.glob("*/pareto.csv")):
        frame = pd.read_csv(path)
        missing = set(COLUMNS) - set(frame.columns)
        if missing:
            raise UserError(f"{path}: lacks columns {sorted(missing)}")
        frames.append(frame.assign(study=path.parent.name))
    if not frames:
        return pd.DataFrame(columns=[*COLUMNS, "study"])
    points = pd.concat(frames, ignore_index=True)
    keys = ["study", "method", "network", "dataset", "macs", "params"]
    return points.groupby(keys, as_index=False)["test_acc"].mean()


def front(points: pd.DataFrame, cost: str = "macs") -> pd.DataFrame:
    """Points no other point of the same panel beats (fewer or equal cost, higher accuracy)."""
    keep = []
    for _, panel in points.groupby(["network", "dataset"]):
        ordered = panel.sort_values([cost, "test_acc"], ascending=[True, False])
        best = -1.0
        for index, row in ordered.iterrows():
            if row["test_acc"] > best:
                keep.append(index)
                best = row["test_acc"]
    return points.loc[keep].sort_values(["network", "dataset", cost])


def figure(points: pd.DataFrame):
    """Accuracy against MACs (top) and parameters (bottom), one column per panel."""
    sns.set_theme(style="whitegrid", context="paper")
    panels = list(points.groupby(["network", "dataset"]))
    fig, axes = plt.subplots(2, len(panels), figsize=(3.4 * len(panels), 5.6), squeeze=False)
    for col, ((network, dataset), panel) in enumerate(panels):
        for row, cost in enumerate(("macs", "params")):
            ax = axes[row][col]
            sns.scatterplot(data=panel, x=cost, y="test_acc", hue="method", ax=ax, s=22)
            line = front(panel, cost)
            ax.step(line[cost], line["test_acc"], where="post", color="black", lw=0.6)
            ax.set_xscale("log")
            ax.set_xlabel("MACs (ptflops)" if cost == "macs" else "parameters")
            ax.set_ylabel("test accuracy (fraction)")
            ax.set_title(f"{network}\n{dataset}", fontsize=8)
            if ax.get_legend() is not None and (row, col) != (0, 0):
                ax.get_legend().remove()
    fig.tight_layout()
    return fig
