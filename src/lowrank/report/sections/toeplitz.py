"""Report section of seed 001: post-hoc rank-n SVD of the 5x5 filters, the NumPy Toeplitz
convolution, and its timing against PyTorch and the naive loop.

Reads results/<scale>/toeplitz/ (train.json, accuracy.csv, spectra.csv, timing.csv,
microbench.csv) and the seed's numbers from claims.yaml. Accuracies follow the seed: every
epoch's model is tested, and the seed's table is the average over its 250 epochs, so the
ledger compares epoch means; final-epoch values are shown beside them.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from lowrank.atomic import read_json, write_text, write_with
from lowrank.config import read_yaml
from lowrank.errors import UserError
from lowrank.report import figures
from lowrank.report.comparability import RunProtocol
from lowrank.report.section import DatasetUse, Section
from lowrank.report.tables import to_markdown

SOURCE = "001_a55016b4276d39c2.txt"
PAPER_DATASET = "cifar10_gray"
PAPER_EPOCHS = 250
# The seed's curve events (rank-1 peak near epoch 50, chance by epoch 200) need a long run;
# a shorter one cannot show them, so those metrics are only measured from this many epochs.
CURVE_MIN_EPOCHS = 100
CHANCE_MARGIN = 0.02  # "basically random guessing": within 2 points of 1 / classes
DECLINE_WINDOW = 10  # epochs of the moving average that smooths the curves for peak/decline


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"{path}: missing; run the toeplitz workflow jobs for this scale first")
    return pd.read_csv(path)


def _claims() -> list[dict]:
    """Seed 001's claims from claims.yaml (working directory first, then the source tree)."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[4]):
        if (root / "claims.yaml").is_file():
            return [c for c in read_yaml(root / "claims.yaml") if c["source"] == SOURCE]
    return []


def _paper(claims: list[dict], metric: str, **selector) -> float:
    for c in claims:
        sel = c.get("selector") or {}
        if c["metric"] == metric and all(str(sel.get(k)) == str(v) for k, v in selector.items()):
            return c["paper_value"]
    return float("nan")


def _label(method: str, rank) -> str:
    if method == "numpy_toeplitz":
        return f"NumPy Toeplitz, rank {rank}"
    if method == "naive":
        return "NumPy naive loop (full filters)"
    return "PyTorch (full filters)" if str(rank) == "full" else f"PyTorch, rank-{rank} kernels"


def _smoothed(values: np.ndarray) -> np.ndarray:
    return pd.Series(values).rolling(DECLINE_WINDOW, center=True, min_periods=1).mean().to_numpy()


def curve_events(epochs: np.ndarray, acc: np.ndarray, chance: float) -> dict:
    """Peak epoch of the smoothed curve, first later epoch within CHANCE_MARGIN of chance
    (NaN if never), and the late decline (smoothed peak minus smoothed final, points)."""
    smooth = _smoothed(acc)
    peak = int(np.argmax(smooth))
    after = np.nonzero(smooth[peak:] <= chance + CHANCE_MARGIN)[0]
    return {
        "peak": float(epochs[peak]),
        "reaches_chance": float(epochs[peak + after[0]]) if len(after) else float("nan"),
        "decline_points": 100 * float(smooth[peak] - smooth[-1]),
    }


def accuracy_table(acc: pd.DataFrame, claims: list[dict], epochs: int) -> pd.DataFrame:
    """Per method and rank: epoch-mean and final test accuracy, agreement, beside the paper."""
    test = acc[acc["split"] == "test"]
    rows = []
    order = [("torch", "full"), ("naive", "full")] + [
        ("numpy_toeplitz", str(r)) for r in sorted(test["rank"].unique(), key=str) if r != "full"
    ]
    for method, rank in order:
        part = test[(test["method"] == method) & (test["rank"].astype(str) == rank)]
        if part.empty:
            continue
        per_epoch = part.groupby("epoch")["accuracy"].mean()
        final = part[part["epoch"] == epochs]
        # The seed's naive loop has PyTorch's accuracy exactly (its claim is a zero gap).
        paper = _paper(
            claims, "toeplitz.test_acc", rank=rank, method="torch" if method == "naive" else method
        )
        mean = per_epoch.mean() if len(per_epoch) == epochs else float("nan")
        rows.append(
            {
                "method": _label(method, rank),
                "rank": rank,
                "test_acc_epoch_mean": round(mean, 4),
                "test_acc_final_epoch": round(final["accuracy"].mean(), 4),
                "epochs_tested": len(per_epoch),
                "paper_epoch_mean": paper,
                "ours_minus_paper": round(mean - paper, 4),
                "agree_with_torch_same_kernels": round(final["agree"].mean(), 4)
                if "agree" in final and final["agree"].notna().any()
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def timing_table(timing: pd.DataFrame, claims: list[dict]) -> pd.DataFrame:
    """Median seconds for all test images, spread, ratio to PyTorch, and the seed's numbers."""
    paper_torch = _paper(claims, "toeplitz.test_seconds", rank="full", method="torch")
    rows = []
    for _, r in timing.iterrows():
        rank = str(r["rank"])
        paper = (
            _paper(claims, "toeplitz.test_seconds", rank=rank, method=r["method"])
            if r["protocol"] == "per_image"
            else float("nan")
        )
        rows.append(
            {
                "protocol": r["protocol"],
                "method": _label(r["method"], rank),
                "median_s": round(r["median_s"], 4),
                "iqr_s": f"{r['q1_s']:.4g}-{r['q3_s']:.4g}",
                "min_max_s": f"{r['min_s']:.4g}-{r['max_s']:.4g}",
                "repeats": int(r["repeats"]),
                "timed_images": f"{int(r['images_timed'])} of {int(r['images'])}"
                + (" (scaled)" if r["extrapolated"] else ""),
                "ratio_to_torch": round(r["ratio_to_torch"], 3),
                "paper_s": paper,
                "paper_ratio_to_torch": round(paper / paper_torch, 3)
                if paper == paper
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def _curves_figure(acc: pd.DataFrame, spectra: pd.DataFrame, label: str, scale: str):
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator

    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    test = acc[acc["split"] == "test"]
    curves = test[
        (test["method"] == "numpy_toeplitz")
        | ((test["method"] == "torch") & (test["rank"].astype(str) == "full"))
    ]
    for (method, rank), part in curves.groupby(["method", "rank"], sort=False):
        mean = part.groupby("epoch")["accuracy"].mean()
        style = {"color": "black", "lw": 1.5, "ls": "--", "zorder": 3} if method == "torch" else {}
        axes[0].plot(
            mean.index,
            mean.values,
            marker="." if len(mean) < 30 else None,
            label=_label(method, rank),
            **style,
        )
    axes[0].set_xlabel("training epoch")
    axes[0].set_ylabel("test accuracy (fraction)")
    axes[0].set_title(f"Test accuracy per rank ({label}, {scale} scale)")
    axes[0].legend(fontsize=7)
    energy = spectra.groupby(["epoch", "layer"])["rank1_energy"].mean().reset_index()
    for layer, part in energy.groupby("layer"):
        axes[1].plot(part["epoch"], part["rank1_energy"], label=f"conv {layer}")
    axes[1].set_xlabel("training epoch")
    axes[1].set_ylabel(r"$\sigma_1^2 / \sum_i \sigma_i^2$")
    axes[1].set_title("Share of each 5x5 filter's energy in rank 1 (mean over slices)")
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def _rank(value) -> int | str:
    return "full" if str(value) == "full" else int(value)


def measurements(
    acc: pd.DataFrame,
    timing: pd.DataFrame,
    micro: pd.DataFrame,
    epochs: int,
    total_seconds: float,
    num_classes: int,
) -> pd.DataFrame:
    """Long-format rows of the toeplitz.* metrics of workflow/schemas/metrics.yaml.

    Accuracies per epoch and as the mean over all epochs (the seed's statistic); timing
    metrics from the per-image protocol (the seed's); curve events only for long runs."""
    rows: list[dict] = []

    def add(metric: str, value: float, seed, **keys) -> None:
        rows.append({"metric": f"toeplitz.{metric}", **keys, "seed": int(seed), "value": value})

    test = acc[acc["split"] == "test"].assign(rank=lambda f: f["rank"].astype(str))
    for (seed, method, rank), part in test.groupby(["seed", "method", "rank"]):
        for epoch, value in zip(part["epoch"], part["accuracy"], strict=True):
            add("test_acc", value, seed, rank=_rank(rank), method=method, epoch=int(epoch))
        if part["epoch"].nunique() == epochs:
            add(
                "test_acc",
                part["accuracy"].mean(),
                seed,
                rank=_rank(rank),
                method=method,
                epoch="mean",
            )
    train = acc[acc["split"] == "train"]
    for seed, epoch, value in zip(train["seed"], train["epoch"], train["accuracy"], strict=True):
        add("train_acc", value, seed, rank="full", epoch=int(epoch))
    for seed, part in test.groupby("seed"):
        reference = part[(part["method"] == "torch") & (part["rank"] == "full")]
        reference = reference.set_index("epoch")["accuracy"]
        for (method, rank), sub in part.groupby(["method", "rank"]):
            if (method, rank) == ("torch", "full"):
                continue
            curve = sub.set_index("epoch")["accuracy"].sort_index()
            common = curve.index.intersection(reference.index)
            gap = 100 * float((reference[common] - curve[common]).mean())
            add("acc_drop_vs_torch", gap, seed, rank=_rank(rank), method=method)
            if method != "numpy_toeplitz" or epochs < CURVE_MIN_EPOCHS:
                continue
            ev = curve_events(curve.index.to_numpy(), curve.to_numpy(), 1.0 / num_classes)
            add("late_acc_decline", ev["decline_points"], seed, rank=_rank(rank), method=method)
            if rank == "1":
                for event in ("peak", "reaches_chance"):
                    add("rank1_collapse_epoch", ev[event], seed, event=event)

    per_image = timing[timing["protocol"] == "per_image"]
    seed = int(timing["seed"].iloc[0])
    sec = {
        (m, str(r)): v
        for m, r, v in zip(
            per_image["method"], per_image["rank"], per_image["median_s"], strict=True
        )
    }
    torch_s = sec[("torch", "full")]
    for (method, rank), value in sec.items():
        add("test_seconds", value, seed, rank=_rank(rank), method=method)
        if method == "numpy_toeplitz":
            saving = 100 * (torch_s - value) / torch_s
            add("time_saving_vs_torch_pct", saving, seed, rank=_rank(rank), method=method)
    others = [v for (m, _), v in sec.items() if m != "naive"]
    if ("naive", "full") in sec:
        # "slower than the nearest method": the nearest in time is the slowest of the others
        add("naive_slowdown", sec[("naive", "full")] / max(others), seed)
    toe = {int(r): v for (m, r), v in sec.items() if m == "numpy_toeplitz"}
    steps = {}
    if {1, 2} <= set(toe):
        steps["1-2"] = toe[2] - toe[1]
    if {2, 5} <= set(toe):
        steps["2-5"] = (toe[5] - toe[2]) / 3
    for ranks, step in steps.items():
        add("seconds_per_rank_step", step, seed, ranks=ranks)
        # the machine-independent form: the step as a share of the rank-1 time
        add("rank_step_ratio", step / toe[1], seed, ranks=ranks)

    for _, r in micro.iterrows():
        keys = {k: r[k] for k in ("op", "shape", "A", "F") if isinstance(r[k], str) and r[k]}
        add("microbench_seconds", r["median_s"], 0, **keys)
    by_op = dict(zip(micro["op"], micro["median_s"], strict=True))
    if {"matmul", "naive_loop_conv"} <= set(by_op):
        ratio = by_op["matmul"] / by_op["naive_loop_conv"]
        add("microbench_ratio", ratio, 0, num="matmul", den="naive_loop_conv")
    add("total_run_seconds", total_seconds, seed, epochs=epochs)
    return pd.DataFrame(rows)


def _sidecar(path: Path) -> dict:
    side = path.with_name(path.name + ".provenance.json")
    return read_json(side) if side.is_file() else {}


def _html_table(frame: pd.DataFrame) -> str:
    table = frame.to_html(index=False, classes="sortable", na_rep="n/a", float_format="%.4g")
    return f'<div class="scroll">{table}</div>'


PAPER_MICROBENCH = {"naive_size": 1002, "matmul": [10000, 1000, 10000]}  # the seed's Figure 2


def _reduced_microbench(cfg: dict) -> dict[str, str]:
    """The Figure 2 micro-benchmark as a "model" of its own: reduced when its sizes are not
    the seed's (its ratio depends on them)."""
    bench = (cfg.get("bench") or {}).get("microbench") or cfg.get("microbench") or {}
    if not bench or (
        bench.get("naive_size") == PAPER_MICROBENCH["naive_size"]
        and list(bench.get("matmul", [])) == PAPER_MICROBENCH["matmul"]
    ):
        return {}
    return {
        "fig2_sizes": f"naive loop on {bench.get('naive_size')}^2, matmul {bench.get('matmul')} "
        "instead of 1002^2 and [10000, 1000, 10000]"
    }


def build(results: Path, cfg: dict, scale: str, out: Path) -> Section:
    folder = results / "toeplitz"
    train_path = folder / "train.json"
    if not train_path.is_file():
        raise UserError(f"{train_path}: missing; run the toeplitz workflow jobs first")
    summary = read_json(train_path)
    acc = _read_csv(folder / "accuracy.csv")
    spectra = _read_csv(folder / "spectra.csv")
    timing = _read_csv(folder / "timing.csv")
    micro = _read_csv(folder / "microbench.csv").fillna("")
    claims = _claims()
    label = summary["dataset_label"]
    epochs = cfg["epochs"]
    bench_prov = _sidecar(folder / "timing.csv")
    sweep_prov = _sidecar(folder / "accuracy.csv")
    train_seconds = sum(r["train_seconds"] for r in summary["runs"])
    total = train_seconds + float(sweep_prov.get("wall_seconds", 0.0))

    acc_table = accuracy_table(acc, claims, epochs)
    time_table = timing_table(timing, claims)
    micro_table = micro.assign(  # the seed's seconds only beside the seed's sizes
        paper_s=[
            _paper(claims, "toeplitz.microbench_seconds", op=r["op"], A=r["A"], F=r["F"])
            if r["op"] == "naive_loop_conv"
            else _paper(claims, "toeplitz.microbench_seconds", op=r["op"], shape=r["shape"])
            for _, r in micro.iterrows()
        ]
    )
    measured = measurements(acc, timing, micro, epochs, total, summary["model"]["num_classes"])

    tables, figs = out / "tables", out / "figures"
    named = {
        "toeplitz_accuracy_per_rank": acc_table,
        "toeplitz_timing": time_table,
        "toeplitz_microbench": micro_table,
    }
    for name, frame in named.items():
        write_with(tables / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
        write_text(tables / f"{name}.md", to_markdown(frame))
    image = figures.save(
        _curves_figure(acc, spectra, label, scale), figs / "toeplitz_rank_curves.png"
    )

    m = summary["model"]
    stand_in = cfg["dataset"] != PAPER_DATASET
    scale_note = ""
    if stand_in or epochs < PAPER_EPOCHS:
        scale_note = (
            f"{scale} scale: {label}"
            + (" instead of grayscale CIFAR-10" if stand_in else "")
            + f", {epochs} epoch(s) instead of {PAPER_EPOCHS}"
            + "; timings from a shared machine"
        )
    final = acc[(acc["split"] == "test") & (acc["epoch"] == epochs)]
    agree = final["agree"].dropna()
    min_agree = agree.min() if len(agree) else float("nan")
    threads = bench_prov.get("torch_threads", "?")
    blas = bench_prov.get("blas_threads", "?")
    e = html.escape
    body = f"""
<h2 id="toeplitz">Post-hoc SVD of 5x5 filters and the Toeplitz convolution (seed 001)</h2>
<p>Source <code>{SOURCE}</code>: a 2-conv CNN (conv 5x5, ReLU, 2x2 max-pool, twice; then
Linear-ReLU-Linear) is trained, every trained 5x5 kernel slice F is replaced by its best rank-n
approximation (SVD, n = 1..5), and the network is run three ways: PyTorch, NumPy with the
convolutions as products with "extended-slide" (Toeplitz) matrices, B = &sum;<sub>i</sub>
f<sub>i</sub>*<sup>T</sup> A g<sub>i</sub>*, and NumPy with the naive loop convolution.</p>
<p class="meta">Data: <b>{e(label)}</b> (checksum <code>{e(summary["dataset_checksum"])}</code>),
{summary["runs"][0]["train_images"]} training images, {int(final["images"].iloc[0])} test
images. Network: conv channels {m["channels"][0]} and {m["channels"][1]} (the seed names one
filter per conv layer), hidden width {m["hidden"]} (lost in the seed; the width of the tutorial
it cites), Adam lr {cfg["lr"]} (not given; the cited tutorial's), batch {cfg["batch_size"]},
{epochs} epochs, seeds {cfg["seeds"]}. Every epoch's model is tested, as in the seed, whose
accuracy table is the average over its 250 epochs.</p>

<h3 id="toeplitz-accuracy">Test accuracy per rank</h3>
<p>Fractions of the test set of {e(label)} ({scale} scale): mean over all {epochs} epoch(s)
(the seed's statistic), final epoch, and the share of final-epoch predictions equal to PyTorch's
with the same kernels (1.0 = every prediction; the Toeplitz network equals PyTorch's
conv2d with rank-n kernels, and rank 5 equals the original filters). <code>paper_epoch_mean</code>
is the seed's table (grayscale CIFAR-10, 250 epochs).</p>
{_html_table(acc_table)}
<p>Final-epoch agreement with PyTorch on the same kernels: min {min_agree:.4f} over
{len(agree)} checks.</p>
<img src="{image}" alt="test accuracy per training epoch for ranks 1 to 5 and PyTorch, and the
rank-1 energy share of the filters, {e(label)}, {scale} scale">

<h3 id="toeplitz-timing">Inference time on the test images</h3>
<p>Seconds to classify all {int(timing["images"].iloc[0])} test images of {e(label)} with the
final-epoch model: median over the repeats, interquartile range and min-max; threads fixed:
torch {threads}, NumPy BLAS {e(str(blas))}. <b>per_image</b> passes images one at a time as the
seed does; <b>batched</b> passes {cfg["bench"]["chunk"]} at a time. Rows marked "scaled" timed a
prefix of the images and scale linearly. Device: {e(str(bench_prov.get("device", "?")))}.
Absolute seconds depend on the machine and on the jobs running beside it (this project's machine
is shared, which inflates them); the ratios to PyTorch are what compare with the seed
(<code>paper_ratio_to_torch</code>; the seed's seconds are per-image passes on its machine).</p>
{_html_table(time_table)}

<h3 id="toeplitz-microbench">The seed's Fig. 2: a Python loop vs one large matmul</h3>
<p>Seconds (median of {cfg["bench"]["repeats"]}) for the seed's <code>conv_reg</code> with a 3x3
filter and for one float64 matmul, on random normal matrices (no dataset), same threads ({scale}
scale); the seed uses a 1002x1002 matrix and 10000x1000x10000, other
scales keep the ratio of multiplications (about 1e4).</p>
{_html_table(micro_table)}
"""
    return Section(
        key="toeplitz",
        title="Post-hoc SVD of 5x5 filters and the Toeplitz convolution (seed 001)",
        anchor="toeplitz",
        html=body,
        measured=measured,
        scale_note=scale_note,
        datasets=[
            DatasetUse(
                label,
                summary["dataset_checksum"],
                "stand-in for grayscale CIFAR-10 (not available offline)" if stand_in else "",
            )
        ],
        train_seconds=train_seconds,
        run=RunProtocol(
            datasets={PAPER_DATASET: cfg["dataset"]},
            full_size=True,
            epochs=epochs,
            converged_by=None,
            reduced_models=_reduced_microbench(cfg),
        ),
    )
