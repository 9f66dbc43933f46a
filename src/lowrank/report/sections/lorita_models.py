"""Shared by the report sections of the CNN/ViT LoRITa studies (lorita_cnn, lorita_vit,
structured): reading their results, the truncation-curve figure, the compression summary and
the long-format measured rows. Only files under results/<scale>/<study>/ are read.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from lowrank.atomic import read_json, write_text, write_with
from lowrank.config import read_yaml
from lowrank.errors import UserError
from lowrank.report.comparability import RunProtocol
from lowrank.report.section import DatasetUse
from lowrank.report.tables import to_markdown
from lowrank.studies import job_names
from lowrank.train.lorita_models import selected_runs

SOURCE = "004_412d21979407f75a.txt"


def read_study(results: Path, study: str, cfg: dict) -> tuple[list[dict], pd.DataFrame]:
    """Every summary.json and the pooled sweep.csv rows of a study at this scale."""
    folder = results / study
    summaries, sweeps = [], []
    for job in job_names(study, {study: cfg}):
        path = folder / job / "summary.json"
        sweep = folder / job / "sweep.csv"
        for need in (path, sweep):
            if not need.is_file():
                raise UserError(f"{need}: missing; run the {study} workflow jobs first")
        summaries.append(read_json(path))
        sweeps.append(pd.read_csv(sweep))
    return summaries, pd.concat(sweeps, ignore_index=True)


def claims(study_metric_prefix: str) -> list[dict]:
    """The LoRITa claims of one metric family from claims.yaml (cwd first, then the tree)."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[4]):
        if (root / "claims.yaml").is_file():
            return [
                c
                for c in read_yaml(root / "claims.yaml")
                if c["source"] == SOURCE and c["metric"].startswith(study_metric_prefix)
            ]
    return []


def datasets(summaries: list[dict]) -> list[DatasetUse]:
    seen: dict[str, DatasetUse] = {}
    for s in summaries:
        note = (
            ""
            if s["dataset"] == s["requested_dataset"]
            else f"stand-in for {s['requested_dataset']}, whose files are not in data_dir"
        )
        seen.setdefault(
            s["dataset_label"],
            DatasetUse(s["dataset_label"], s["provenance"]["dataset_checksum"], note),
        )
    return list(seen.values())


def _sd(values: list[float]) -> float:
    if len(values) < 2:
        return float("nan")
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def paper_lookup(claims_list: list[dict], metric: str, fields: dict[str, str]):
    """A function summary -> the paper's value of `metric` for that configuration and N (the
    "LoRITa" column, whose N was lost, for any N > 1), or None. `fields` maps selector keys
    to summary keys, e.g. {"model": "tag", "dataset": "requested_dataset"}."""

    def find(summary: dict) -> float | None:
        exact = lorita = None
        for c in claims_list:
            sel = c.get("selector") or {}
            if c["metric"] != metric or c["paper_value"] is None:
                continue
            if any(str(sel.get(k)) != str(summary[f]) for k, f in fields.items()):
                continue
            if sel.get("n_factors") == summary["n_factors"]:
                exact = c["paper_value"]
            elif sel.get("n_factors") is None and summary["n_factors"] > 1:
                lorita = c["paper_value"]
        return exact if exact is not None else lorita

    return find


def accuracy_table(summaries: list[dict], paper) -> pd.DataFrame:
    """Test accuracy per configuration and N (mean, sd over seeds) beside the paper's value
    (`paper`: summary -> value), shown only where our dataset is the paper's."""
    rows = []
    for s in summaries:
        accs = [r["test_acc"] for r in selected_runs(s)]
        value = paper(s) if s["dataset"] == s["requested_dataset"] else None
        rows.append(
            {
                "model": s["tag"],
                "width": s["model_kwargs"].get("width", 1.0),
                "augmentation": s["augment"],
                "dataset": s["dataset"],
                "N": s["n_factors"],
                "test_acc_mean": round(sum(accs) / len(accs), 4),
                "test_acc_sd": round(_sd(accs), 4),
                "seeds": len(accs),
                "weight_decay": s["selected_weight_decay"],
                "epochs": s["epochs"],
                "train_images": s["train_images"],
                "test_images": s["test_images"],
                "paper": float("nan") if value is None else value,
                "paper_dataset": s["requested_dataset"],
            }
        )
    return pd.DataFrame(rows)


def compression_summary(sweep: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per configuration, N and method: the smallest retained fraction whose seed-mean test
    accuracy drop stays within `tolerance`, with the MACs and parameters kept there."""
    keys = ["model", "dataset", "augmentation", "n_factors", "method"]
    mean = sweep.groupby([*keys, "target_fraction"], as_index=False)[
        ["retained_fraction", "acc_drop", "macs", "params", "base_macs", "base_params"]
    ].mean()
    rows = []
    for key, group in mean.groupby(keys):
        ok = group[group["acc_drop"] <= tolerance + 1e-12].sort_values("retained_fraction")
        best = ok.iloc[0] if len(ok) else None
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "min_retained_pct": None
                if best is None
                else round(100 * best["retained_fraction"], 1),
                "acc_drop_pts": None if best is None else round(100 * best["acc_drop"], 2),
                "macs_pct_of_dense": None
                if best is None
                else round(100 * best["macs"] / best["base_macs"], 1),
                "params_pct_of_dense": None
                if best is None
                else round(100 * best["params"] / best["base_params"], 1),
            }
        )
    return pd.DataFrame(rows).rename(columns={"n_factors": "N"})


def flops_table(sweep: pd.DataFrame, summaries: list[dict]) -> pd.DataFrame:
    """Dense (collapsed) cost per configuration and N: ptflops beside the analytic count, and
    whether they agreed on every realized model of the sweep."""
    train_params = {
        (s["config"], s["n_factors"]): selected_runs(s)[0]["train_params"] for s in summaries
    }
    rows = []
    for (config, n), group in sweep.groupby(["config", "n_factors"], sort=False):
        first = group.iloc[0]
        rows.append(
            {
                "config": config,
                "N": n,
                "inference_macs_ptflops": first["base_macs"],
                "attention_macs_analytic": first["base_attention_macs"],
                "conv_linear_macs": first["base_conv_linear_macs"],
                "inference_params": first["base_params"],
                "training_params": train_params[(config, n)],
                "ptflops_equals_analytic": bool(
                    group["analytic_agrees"].all() and group["base_analytic_agrees"].all()
                ),
            }
        )
    return pd.DataFrame(rows)


def measurements(
    prefix: str,
    summaries: list[dict],
    sweep: pd.DataFrame,
    tolerance: float,
    selector: tuple[str, ...],
) -> pd.DataFrame:
    """Long-format rows of `<prefix>.test_acc`, `.min_retained_pct`, `.acc_drop_at_retained`;
    `selector` names the sweep columns every row carries (besides n_factors, seed)."""
    rows: list[dict] = []
    for s in summaries:
        base = {"model": s["tag"], "dataset": s["dataset"], "augmentation": s["augment"]}
        for run in selected_runs(s):
            rows.append(
                {
                    "metric": f"{prefix}.test_acc",
                    **{k: base[k] for k in selector},
                    "n_factors": s["n_factors"],
                    "seed": run["seed"],
                    "value": run["test_acc"],
                }
            )
    group_keys = [*selector, "n_factors", "seed", "method"]
    for key, group in sweep.groupby(group_keys):
        labels = dict(zip(group_keys, key, strict=True))
        ok = group[group["acc_drop"] <= tolerance + 1e-12]
        if len(ok):
            rows.append(
                {
                    "metric": f"{prefix}.min_retained_pct",
                    **labels,
                    "value": 100 * ok["retained_fraction"].min(),
                }
            )
        for pct, drop in drops_at_retained(group, sorted(set(group["target_fraction"]))):
            rows.append(
                {
                    "metric": f"{prefix}.acc_drop_at_retained",
                    **labels,
                    "retained_pct": pct,
                    "value": drop,
                }
            )
    return pd.DataFrame(rows)


NEAREST_POINT_PCT = 5.0  # a drop "at X% retained" needs a measured point within 5 points of X


def drops_at_retained(group: pd.DataFrame, targets: list[float]) -> list[tuple[int, float]]:
    """The accuracy drop (points) at each share X = round(100 * target) read on the REALIZED
    axis (retained / total per matrix, averaged), interpolated linearly between measured
    points; an X with no measured point within NEAREST_POINT_PCT is left out rather than
    read off a far-away point (GSVT's target 0.20 lands at 24.6% for VGG16)."""
    g = group.sort_values("retained_fraction")
    x = 100 * g["retained_fraction"].to_numpy(dtype=float)
    y = 100 * g["acc_drop"].to_numpy(dtype=float)
    out = []
    for pct in sorted({round(100 * t) for t in targets}):
        if len(x) == 0 or min(abs(x - pct)) > NEAREST_POINT_PCT or not x[0] <= pct <= x[-1]:
            continue
        out.append((pct, float(np.interp(pct, x, y))))
    return out


def truncation_figure(sweep: pd.DataFrame, title: str):
    """Accuracy drop against retained singular values: LSVT over GSVT, one column per model
    (the paper's Figure 2 right / Figure 4 / Figures 5-6)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    frame = sweep.assign(
        retained_pct=100 * sweep["retained_fraction"],
        drop_pct=100 * sweep["acc_drop"],
        N=sweep["n_factors"].map(lambda n: f"N={n}"),
        panel=sweep["model"] + " / " + sweep["dataset"],
    )
    grid = sns.relplot(
        data=frame,
        x="retained_pct",
        y="drop_pct",
        hue="N",
        row="method",
        col="panel",
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
    grid.figure.suptitle(title, y=1.02, fontsize=9)
    return grid.figure


def write_tables(out: Path, named: dict[str, pd.DataFrame]) -> None:
    for name, frame in named.items():
        write_with(out / "tables" / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
        write_text(out / "tables" / f"{name}.md", to_markdown(frame))


def html_table(frame: pd.DataFrame) -> str:
    return (
        '<div class="scroll">'
        + frame.to_html(index=False, classes="sortable", na_rep="n/a", border=0)
        + "</div>"
    )


def data_sentence(summaries: list[dict], scale: str) -> str:
    """Which data every number of the section comes from, in one HTML sentence."""
    parts = sorted({(s["dataset_label"], s["requested_dataset"]) for s in summaries})
    text = "; ".join(
        f"<b>{html.escape(label)}</b>"
        + (
            ""
            if label.lower().startswith(req.replace("cifar", "cifar-"))
            else f" (the paper uses {html.escape(req)}; not in data_dir at this scale)"
        )
        for label, req in parts
    )
    s = summaries[0]
    return (
        f'<p class="meta">Data: {text}. {scale} scale: {s["train_images"]} training images, '
        f"accuracies on {s['val_images']} validation / {s['test_images']} test images, "
        f"{s['epochs']} epoch(s), seeds {sorted({r['seed'] for r in s['runs']})}, "
        f"{s['optimizer']} lr {s['lr']:g}, batch {s['batch_size']}, weight decay chosen on "
        f"validation data from {sorted({r['weight_decay'] for r in s['runs']})}.</p>"
    )


def run_protocol(summaries: list[dict], paper_epochs: int) -> RunProtocol:
    """What the CNN/ViT runs of this scale did: the dataset each source dataset was run on,
    model widths, epochs. "Converged" means the paper-scale budget (paper_epochs with the
    schedule the paper scale uses); nothing shorter is called converged."""
    s = summaries[0]
    widths = sorted({x["model_kwargs"].get("width", 1.0) for x in summaries})
    epochs = min(x["epochs"] for x in summaries)
    return RunProtocol(
        datasets={x["requested_dataset"]: x["dataset"] for x in summaries},
        full_size=widths == [1.0],
        size_note=f"channel width x{widths}" if widths != [1.0] else "",
        epochs=epochs,
        converged_by=f"{paper_epochs} epochs, the paper-scale schedule"
        if epochs >= paper_epochs
        else None,
        seeds=len({r["seed"] for r in s["runs"]}),
    )


def scale_note(summaries: list[dict], paper_epochs: int) -> str:
    s = summaries[0]
    stand_in = any(x["dataset"] != x["requested_dataset"] for x in summaries)
    widths = sorted({x["model_kwargs"].get("width", 1.0) for x in summaries})
    if not stand_in and s["epochs"] >= paper_epochs and widths == [1.0]:
        return ""
    return (
        f"{s['dataset_label'] if stand_in else s['dataset']}"
        + (f" instead of {s['requested_dataset']}" if stand_in else "")
        + f", {s['epochs']} epoch(s) instead of {paper_epochs}"
        + (f", channel width x{widths}" if widths != [1.0] else "")
        + f", {s['train_images']} training images"
    )
