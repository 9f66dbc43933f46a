"""Report section of the rank-constrained convolution study (seed 000, the slides).

Reads results/<scale>/rankconv/<config>/summary.json only. Per configuration (kernel K, rank or
dense, variant) it tabulates and plots accuracy with 95% bootstrap intervals over seeds, the
generalization gap, the curves of the largest K, training and test time, and returns the
measured rows the claims ledger compares with the slides.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lowrank.atomic import read_json, write_text, write_with  # noqa: E402
from lowrank.errors import UserError  # noqa: E402
from lowrank.report import figures  # noqa: E402
from lowrank.report.comparability import RunProtocol
from lowrank.report.ledger import bootstrap_ci  # noqa: E402
from lowrank.report.section import DatasetUse, Section  # noqa: E402
from lowrank.report.tables import to_markdown  # noqa: E402
from lowrank.train.rankconv import config_name, grid  # noqa: E402

KEY = "rankconv"
TITLE = "Rank-constrained convolution training (seed 000)"
SOURCE = "000_7c1706fb9bcd7dd3.txt (slides, 'Efficient Low-Rank Convolutional Neural Networks')"


def load(results: Path, cfg: dict) -> list[dict]:
    """Every configuration's summary.json of the block's grid."""
    summaries = []
    for kernel, rank, variant in grid(cfg):
        path = results / KEY / config_name(kernel, rank, variant) / "summary.json"
        if not path.is_file():
            raise UserError(f"{path}: missing; run the rankconv jobs of this scale first")
        summaries.append(read_json(path))
    return summaries


def _first(history: list[dict], test) -> float:
    """The first checkpoint iteration whose record passes `test` (NaN if none)."""
    return next((h["iteration"] for h in history if test(h)), float("nan"))


def runs_frame(summaries: list[dict], cfg: dict) -> pd.DataFrame:
    """One row per (configuration, seed) with every per-run number the section uses."""
    rows = []
    for s in summaries:
        for r in s["runs"]:
            early = next(
                (h for h in r["history"] if h["iteration"] >= cfg["early_iteration"]),
                r["history"][-1],
            )
            reached = _first(r["history"], lambda h: h["test_acc"] >= cfg["target_acc"])
            rows.append(
                {
                    "kernel": s["kernel"],
                    "rank": s["rank"],
                    "variant": s["variant"],
                    "seed": r["seed"],
                    "test_acc": r["test_acc"],
                    "train_acc": r["train_acc"],
                    "test_loss": r["test_loss"],
                    "train_loss": r["train_loss"],
                    "gen_gap": 100 * (r["train_acc"] - r["test_acc"]),
                    "reached": not np.isnan(reached),
                    # a seed that never reaches the target counts as the whole budget
                    "iters_to_target": reached
                    if not np.isnan(reached)
                    else s["settings"]["iterations"],
                    "early_iteration": early["iteration"],
                    "early_acc": early["test_acc"],
                    "train_seconds": r["train_seconds"],
                    "test_seconds": r["test_seconds"],
                    "strategy": r["strategy"],
                    "conv_parameters": s["conv_parameters"],
                }
            )
    return pd.DataFrame(rows)


def curves_frame(summaries: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"kernel": s["kernel"], "rank": s["rank"], "variant": s["variant"], "seed": r["seed"]}
            | h
            for s in summaries
            for r in s["runs"]
            for h in r["history"]
        ]
    )


def _with_dense(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Low-rank rows beside the dense run of the same kernel, variant and seed."""
    dense = runs[runs["rank"] == "dense"][["kernel", "variant", "seed", column]]
    low = runs[runs["rank"] != "dense"]
    return low.merge(dense, on=["kernel", "variant", "seed"], suffixes=("", "_dense"))


def measurements(runs: pd.DataFrame) -> pd.DataFrame:
    """Long-format rows (metric, selector keys, seed, value) for the claims ledger."""
    keys = ["kernel", "rank", "variant", "seed"]
    out = []

    def add(metric: str, frame: pd.DataFrame, values, extra: dict | None = None, cols=keys):
        part = frame[cols].copy()
        part["value"] = np.asarray(values, dtype=float)
        part.insert(0, "metric", metric)
        for k, v in (extra or {}).items():
            part[k] = v
        out.append(part)

    add("rankconv.test_acc", runs, runs["test_acc"])
    add("rankconv.generalization_gap", runs, runs["gen_gap"])
    add("rankconv.iters_to_target", runs, runs["iters_to_target"])
    add("rankconv.train_seconds", runs, runs["train_seconds"])
    add("rankconv.test_seconds", runs, runs["test_seconds"])
    acc = _with_dense(runs, "test_acc")
    add("rankconv.acc_gap_to_dense", acc, 100 * (acc["test_acc_dense"] - acc["test_acc"]))
    early = _with_dense(runs, "early_acc")
    add(
        "rankconv.early_acc_gap_to_dense",
        early,
        100 * (early["early_acc_dense"] - early["early_acc"]),
        {"iteration": "early"},
    )
    train = _with_dense(runs, "train_seconds")
    add(
        "rankconv.train_time_ratio_to_dense",
        train,
        train["train_seconds"] / train["train_seconds_dense"],
    )
    test = _with_dense(runs, "test_seconds")
    if len(test):  # per seed: mean over every low-rank configuration of test time / dense's
        ratio = (test["test_seconds"] / test["test_seconds_dense"]).groupby(test["seed"]).mean()
        frame = pd.DataFrame({"seed": ratio.index})
        add("rankconv.test_time_ratio", frame, ratio.to_numpy(), _all("dense"), ["seed"])
    kernels = sorted(runs["kernel"].unique())
    for i, kb in enumerate(kernels):  # per seed: test time at K_a / at K_b, same rank/variant
        for ka in kernels[i + 1 :]:
            a = runs[runs["kernel"] == ka].set_index(["rank", "variant", "seed"])["test_seconds"]
            b = runs[runs["kernel"] == kb].set_index(["rank", "variant", "seed"])["test_seconds"]
            both = (a / b).dropna()
            if len(both):
                ratio = both.groupby(level="seed").mean()
                frame = pd.DataFrame({"seed": ratio.index})
                extra = {"kernel_a": str(ka), "kernel_b": str(kb), "rank": "all", "vs": "kernel"}
                add("rankconv.test_time_ratio", frame, ratio.to_numpy(), extra, ["seed"])
    params = runs.drop_duplicates(["kernel", "rank"])
    dense_params = params[params["rank"] == "dense"].set_index("kernel")["conv_parameters"]
    low = params[(params["rank"] != "dense") & params["kernel"].isin(dense_params.index)]
    if len(low):
        ratio = low["conv_parameters"].to_numpy() / dense_params.loc[low["kernel"]].to_numpy()
        add("rankconv.conv_param_ratio", low, ratio, {"seed": np.nan}, ["kernel", "rank"])
    if not out:
        return pd.DataFrame()
    frame = pd.concat(out, ignore_index=True)
    return frame.astype({"kernel": "Int64", "seed": "Int64"})  # ints beside missing values


def _all(vs: str) -> dict:
    return {"kernel_a": "all", "kernel_b": "all", "rank": "all", "vs": vs}


def _ci(values) -> str:
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return "n/a"
    lo, hi = bootstrap_ci(values)
    return f"[{lo:.4g}, {hi:.4g}]"


def _rank_order(rank: str) -> int:
    return 10**6 if rank == "dense" else int(rank)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: means over seeds with 95% bootstrap intervals."""
    acc = _with_dense(runs, "test_acc")
    acc["gap"] = 100 * (acc["test_acc_dense"] - acc["test_acc"])
    gaps = acc.groupby(["kernel", "rank", "variant"])["gap"]
    rows = []
    for (k, r, v), g in runs.groupby(["kernel", "rank", "variant"]):
        gap = gaps.get_group((k, r, v)) if (k, r, v) in gaps.groups else pd.Series(dtype=float)
        rows.append(
            {
                "kernel": k,
                "rank": r,
                "variant": v,
                "seeds": len(g),
                "test_acc": round(g["test_acc"].mean(), 4),
                "test_acc_95ci": _ci(g["test_acc"]),
                "train_acc": round(g["train_acc"].mean(), 4),
                "gap_to_dense_pts": round(gap.mean(), 2) if len(gap) else np.nan,
                "gap_to_dense_95ci": _ci(gap) if len(gap) else "",
                "gen_gap_pts": round(g["gen_gap"].mean(), 2),
                "gen_gap_95ci": _ci(g["gen_gap"]),
                "iters_to_target": round(g["iters_to_target"].mean(), 1),
                "reached_target": f"{int(g['reached'].sum())}/{len(g)}",
                "early_test_acc": round(g["early_acc"].mean(), 4),
                "train_s": round(g["train_seconds"].mean(), 2),
                "test_s": round(g["test_seconds"].mean(), 3),
                "conv_params": int(g["conv_parameters"].iloc[0]),
                "strategy": ",".join(sorted(g["strategy"].unique())),
            }
        )
    frame = pd.DataFrame(rows)
    order = frame["rank"].map(_rank_order)
    return frame.assign(_o=order).sort_values(["variant", "kernel", "_o"]).drop(columns="_o")


def _xpos(rank: str, dense_x: int) -> int:
    return dense_x if rank == "dense" else int(rank)


def _by_rank_figure(runs: pd.DataFrame, column: str, ylabel: str, title: str, scale_pct=1.0):
    """One panel per variant: mean over seeds with 95% bootstrap intervals, a line per K."""
    variants = list(dict.fromkeys(runs["variant"]))
    dense_x = int(runs["kernel"].max()) + 1
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 3.2), squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        for kernel, g in runs[runs["variant"] == variant].groupby("kernel"):
            pts = []
            for rank, gr in g.groupby("rank"):
                vals = scale_pct * gr[column].to_numpy(float)
                lo, hi = bootstrap_ci(list(vals))
                pts.append((_xpos(rank, dense_x), vals.mean(), lo, hi))
            pts.sort()
            x, m, lo, hi = map(np.array, zip(*pts, strict=True))
            ax.errorbar(x, m, yerr=[m - lo, hi - m], marker="o", capsize=3, label=f"K={kernel}")
        ax.set_xticks(range(1, dense_x + 1))
        ax.set_xticklabels([*map(str, range(1, dense_x)), "dense"])
        ax.set_xlabel("rank N of every KxK kernel slice")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}, variant {variant}", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _curves_figure(curves: pd.DataFrame, kernel: int):
    """Test accuracy (curve subset) and training loss over iterations, a line per rank."""
    sub = curves[curves["kernel"] == kernel]
    variants = list(dict.fromkeys(sub["variant"]))
    fig, axes = plt.subplots(len(variants), 2, figsize=(9, 3 * len(variants)), squeeze=False)
    for row, variant in zip(axes, variants, strict=True):
        g = sub[sub["variant"] == variant]
        for rank in sorted(g["rank"].unique(), key=_rank_order):
            mean = g[g["rank"] == rank].groupby("iteration")[["test_acc", "train_loss"]].mean()
            style = {"color": "black", "lw": 2} if rank == "dense" else {}
            label = "dense (nn.Conv2d)" if rank == "dense" else f"rank {rank}"
            row[0].plot(mean.index, mean["test_acc"], label=label, **style)
            row[1].plot(mean.index, mean["train_loss"], label=label, **style)
        row[0].set_ylabel("test accuracy (curve subset)")
        row[1].set_ylabel("training loss (running mean)")
        for ax in row:
            ax.set_xlabel("iteration (batch 64)")
            ax.set_title(f"K={kernel}, variant {variant}", fontsize=9)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _table_html(frame: pd.DataFrame) -> str:
    table = frame.to_html(index=False, classes="sortable", na_rep="n/a", border=0)
    return f'<div class="scroll">{table}</div>'


def scale_note(scale: str, cfg: dict, label: str) -> str:
    if scale == "paper":
        return ""
    return (
        f"{scale} scale: {label} instead of CIFAR-10, {cfg['iterations']} iterations "
        f"(slides 10,000), {cfg['seeds']} seeds (slides 50), variants {cfg['variants']}, "
        f"a narrower network (channels {cfg['channels']}, hidden {cfg['hidden']})"
    )


def build(results: Path, cfg: dict, scale: str, out: Path) -> Section:
    summaries = load(results, cfg)
    runs = runs_frame(summaries, cfg)
    curves = curves_frame(summaries)
    measured = measurements(runs)
    table = summary_table(runs)
    label, checksum = summaries[0]["dataset_label"], summaries[0]["dataset_checksum"]
    tables, figs = out / "tables", out / "figures"
    named = {"rankconv_summary": table, "rankconv_measured": measured}
    for name, frame in named.items():
        write_with(tables / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
        write_text(tables / f"{name}.md", to_markdown(frame))

    where = f"{label}, {scale} scale"
    largest = int(runs["kernel"].max())
    images = {
        "acc": figures.save(
            _by_rank_figure(runs, "test_acc", "test accuracy (fraction)", where),
            figs / "rankconv_accuracy_vs_rank.png",
        ),
        "curves": figures.save(_curves_figure(curves, largest), figs / "rankconv_curves.png"),
        "gap": figures.save(
            _by_rank_figure(runs, "gen_gap", "train minus test accuracy (points)", where),
            figs / "rankconv_generalization_gap.png",
        ),
        "train_time": figures.save(
            _by_rank_figure(runs, "train_seconds", "training seconds per seed", where),
            figs / "rankconv_train_time.png",
        ),
        "test_time": figures.save(
            _by_rank_figure(runs, "test_seconds", "test seconds per seed", where),
            figs / "rankconv_test_time.png",
        ),
    }
    strategies = {json.dumps(s["strategy"], sort_keys=True) for s in summaries}
    strategy_text = "; ".join(
        f"{d.get('strategy', 'reused')} ({d.get('how', '')}, {d.get('device', '')})"
        for d in map(json.loads, sorted(strategies))
    )
    e = html.escape
    test_set = (
        "the entire test set"
        if cfg["test_images"] is None
        else (f"the first {cfg['test_images']} test images")
    )
    body = f"""
<h2 id="{KEY}">{e(TITLE)}</h2>
<p>Source: {e(SOURCE)}. Every KxK kernel slice of every convolution is kept in a rank-N space
during training (a sum of N outer products u v<sup>T</sup>; the dense kernel is rebuilt by one
einsum each forward pass), against PyTorch's nn.Conv2d ("dense"). <b>Dataset: {e(label)}</b>
(checksum {e(checksum)}), {e(scale)} scale: {cfg["seeds"]} seeds per configuration,
{cfg["iterations"]} iterations of batch {cfg["batch_size"]}, {e(cfg["optimizer"])} at lr
{cfg["lr"]:g}. The slides give no architecture: ours is a small VGG-like CNN (channels
{e(str(cfg["channels"]))}, then Linear({cfg["hidden"]}) and Linear(classes)). The slides'
variants: plain; dropout ({cfg["dropout"]:g}) between blocks; batch norm after every
convolution; both. This scale runs {e(", ".join(cfg["variants"]))}. Final test accuracy on
{test_set}; curves every {cfg["eval_every"]} iterations on the first {cfg["eval_images"]} test
images; train accuracy (for the generalization gap) on the first
{cfg["train_eval_images"]} training images. Target accuracy for "iterations to target":
{cfg["target_acc"]:g} (not given by the slides); "early" = iteration {cfg["early_iteration"]}.
Seeds trained: {e(strategy_text)}. Intervals: 95% bootstrap of the mean over seeds.</p>
<figure><img src="{images["acc"]}" alt="test accuracy vs rank">
<figcaption>Test accuracy (fraction) vs rank per kernel size; {e(where)}.</figcaption></figure>
<figure><img src="{images["curves"]}" alt="curves by rank">
<figcaption>Curves by rank at the largest kernel, K={largest}, mean over seeds; test accuracy
on the curve subset, training loss as the running mean over minibatches; {e(where)}.
</figcaption></figure>
<figure><img src="{images["gap"]}" alt="generalization gap vs rank">
<figcaption>Generalization gap (train minus test accuracy, points) vs rank; {e(where)}.
</figcaption></figure>
<figure><img src="{images["train_time"]}" alt="training time vs rank">
<figcaption>Training wall time per seed (seconds; a vmap group's time is shared equally by its
seeds; measured on {e(summaries[0]["provenance"]["device"])}, which other jobs may share)
vs rank; {e(where)}.</figcaption></figure>
<figure><img src="{images["test_time"]}" alt="test time vs rank">
<figcaption>Test wall time per seed (seconds, one pass over {test_set}) vs rank;
{e(where)}.</figcaption></figure>
<p>Per configuration ({e(where)}; accuracies as fractions, gaps in points, times in seconds
per seed, conv_params = trainable convolution-kernel numbers of the whole network):</p>
{_table_html(table)}
"""
    return Section(
        key=KEY,
        title=TITLE,
        anchor=KEY,
        html=body,
        measured=measured,
        scale_note=scale_note(scale, cfg, label),
        datasets=[
            DatasetUse(
                label,
                checksum,
                "" if "CIFAR" in label else "stand-in for CIFAR-10, which is not available offline",
            )
        ],
        train_seconds=float(runs["train_seconds"].sum()),
        run=RunProtocol(
            datasets={
                "cifar10": cfg.get("dataset") or ("cifar10" if "CIFAR" in label else "mnist")
            },
            full_size=True,
            iterations=cfg["iterations"],
            seeds=cfg["seeds"],
        ),
    )
