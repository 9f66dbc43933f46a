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
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

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


def _short_count(value: float, _position: int | None = None) -> str:
    """Axis labels such as 300k and 1.5M: narrow enough for a 3-inch log axis."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.4g}{suffix}"
    return f"{value:g}"


def figure(points: pd.DataFrame):
    """Accuracy against MACs (top) and parameters (bottom), one column per panel.

    Each method keeps one colour in every panel and the legend (below the panels) lists them
    all, so a method that appears only in a later panel (e.g. Tucker) is still named.
    """
    sns.set_theme(style="whitegrid", context="paper")
    panels = list(points.groupby(["network", "dataset"]))
    methods = sorted(points["method"].unique())
    palette = dict(zip(methods, sns.color_palette("tab10", len(methods)), strict=True))
    fig, axes = plt.subplots(2, len(panels), figsize=(3.4 * len(panels), 6.2), squeeze=False)
    for col, ((network, dataset), panel) in enumerate(panels):
        for row, cost in enumerate(("macs", "params")):
            ax = axes[row][col]
            sns.scatterplot(
                data=panel,
                x=cost,
                y="test_acc",
                hue="method",
                palette=palette,
                ax=ax,
                s=22,
                legend=False,
            )
            line = front(panel, cost)
            ax.step(line[cost], line["test_acc"], where="post", color="black", lw=0.6)
            if panel[cost].max() > 3 * panel[cost].min():  # log only where it spreads points
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 3, 5), numticks=8))
                ax.xaxis.set_minor_formatter(NullFormatter())
            else:
                ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.xaxis.set_major_formatter(FuncFormatter(_short_count))
            ax.set_xlabel("MACs (ptflops)" if cost == "macs" else "parameters")
            ax.set_ylabel("test accuracy (fraction)")
            ax.set_title(f"{network}\n{dataset}", fontsize=8)
    handles = [Line2D([], [], marker="o", ls="", color=palette[m], label=m) for m in methods] + [
        Line2D([], [], color="black", lw=0.6, label="Pareto front")
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), frameon=False)
    rows = -(-len(handles) // min(4, len(handles)))
    fig.tight_layout(rect=(0, 0.045 * rows + 0.02, 1, 1))
    return fig
