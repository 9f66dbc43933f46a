"""Seaborn figures of the FCN study, saved as PNG files and embedded in the HTML report."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from lowrank.atomic import write_bytes  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def save(fig, path: Path) -> str:
    """Write the figure to `path` and return it as a data URI for the HTML page."""
    data = _png(fig)
    write_bytes(path, data)
    return "data:image/png;base64," + base64.b64encode(data).decode()


def on_common_axis(sweep: pd.DataFrame, step: float = 1.0) -> pd.DataFrame:
    """Each seed's curve interpolated onto one grid of the paper's axis (retained %), so seed
    bands can be drawn although GSVT's refined points differ between seeds."""
    if "head" not in sweep.columns:
        sweep = sweep.assign(head="truncated")
    frames = []
    keys = ["depth", "n_factors", "head", "method", "seed"]
    for key, group in sweep.groupby(keys):
        g = group.sort_values("retained_fraction")
        x = 100 * g["retained_fraction"].to_numpy()
        y = 100 * g["acc_drop"].to_numpy()
        grid = np.unique(np.concatenate([np.arange(np.ceil(x[0]), x[-1] + 1e-9, step), x]))
        frames.append(
            pd.DataFrame(
                {
                    **dict(zip(keys, key, strict=True)),
                    "retained_pct": grid,
                    "drop_pct": np.interp(grid, x, y),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def truncation_curves(sweep: pd.DataFrame):
    """Figure 2 (left) of the paper: accuracy drop vs retained share, LSVT and GSVT, with the
    classifier head truncated (the paper's text) and kept; lines are seed means, bands the
    seeds' range, markers every measured point of every seed."""
    sns.set_theme(style="whitegrid", context="paper")
    curves = on_common_axis(sweep)
    frame = curves.assign(
        N=curves["n_factors"].map(lambda n: f"N={n}"),
        model=curves["depth"].map(lambda d: f"FCN-{d}"),
        panel=curves["method"] + ", head " + curves["head"],
    )
    order = [
        f"{m}, head {h}"
        for h in ("truncated", "kept")
        for m in ("LSVT", "GSVT")
        if f"{m}, head {h}" in set(frame["panel"])
    ]
    models = sorted(frame["model"].unique(), key=lambda m: int(m.split("-")[1]))
    grid = sns.relplot(
        data=frame,
        x="retained_pct",
        y="drop_pct",
        hue="N",
        row="panel",
        row_order=order,
        col="model",
        col_order=models,
        kind="line",
        errorbar=("pi", 100),
        height=2.4,
        aspect=1.3,
        facet_kws={"sharey": False},
    )
    points = sweep if "head" in sweep.columns else sweep.assign(head="truncated")
    for (panel, model), ax in grid.axes_dict.items():
        method, head = panel.split(", head ")
        depth = int(model.split("-")[1])
        sel = points[
            (points["method"] == method) & (points["head"] == head) & (points["depth"] == depth)
        ]
        for i, (_, g) in enumerate(sel.groupby("n_factors")):
            ax.scatter(
                100 * g["retained_fraction"],
                100 * g["acc_drop"],
                s=6,
                color=sns.color_palette()[i],
                zorder=3,
            )
        ax.axhline(0, color="black", lw=0.6)
    grid.set_titles("{row_name} | {col_name}")
    grid.set_axis_labels("retained singular values (%)", "test accuracy drop (points)")
    return grid.figure


def spectra(spectra_by_n: dict[int, list[list[float]]], depth: int):
    """Figure 3 of the paper: singular values of the first two weight matrices per N."""
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for layer, ax in enumerate(axes):
        for n, layers in sorted(spectra_by_n.items()):
            values = layers[layer]
            ax.semilogy(range(1, len(values) + 1), [v / values[0] for v in values], label=f"N={n}")
        ax.set_title(f"FCN-{depth}, weight matrix {layer + 1}")
        ax.set_xlabel("index")
        ax.set_ylabel("singular value / largest")
        ax.legend()
    fig.tight_layout()
    return fig
