"""Seaborn figures of the FCN study, saved as PNG files and embedded in the HTML report."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
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


def truncation_curves(sweep: pd.DataFrame):
    """Figure 2 (left) of the paper: accuracy drop vs retained fraction, LSVT over GSVT."""
    sns.set_theme(style="whitegrid", context="paper")
    frame = sweep.assign(
        retained_pct=100 * sweep["retained_fraction"],
        drop_pct=100 * sweep["acc_drop"],
        N=sweep["n_factors"].map(lambda n: f"N={n}"),
        model=sweep["depth"].map(lambda d: f"FCN-{d}"),
    )
    grid = sns.relplot(
        data=frame,
        x="retained_pct",
        y="drop_pct",
        hue="N",
        row="method",
        col="model",
        kind="line",
        marker="o",
        errorbar=("pi", 100),
        height=2.6,
        aspect=1.2,
        facet_kws={"sharey": False},
    )
    grid.set_axis_labels("retained singular values (%)", "test accuracy drop (points)")
    for ax in grid.axes.flat:
        ax.axhline(0, color="black", lw=0.6)
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
