"""Report section of the Tucker study: post-hoc Tucker-2 with fine-tuning (seed 002) and the
Tucker-factorized convolution trained from scratch (seed 003).

Reads only results/<scale>/tucker/ (the step JSONs and pareto.csv); writes its tables and
figures under reports/<scale>/; returns the HTML and the measured rows of the claims ledger
(metrics tucker_posthoc.* and tucker_trained.* of workflow/schemas/metrics.yaml).
"""

from __future__ import annotations

import html as html_lib
from pathlib import Path

import numpy as np
import pandas as pd

from lowrank.atomic import read_json, write_text, write_with
from lowrank.errors import UserError
from lowrank.report import figures, tables
from lowrank.report.comparability import RunProtocol
from lowrank.report.section import DatasetUse, Section

ANCHOR = "tucker"
PAPER_EPOCHS = (
    30  # not given by the sources; what the paper scale uses (converges the tutorial CNN)
)
SOURCES = "002_914d7371f7a973bd.txt (blog, post-hoc) and 003_fcc1a12700470568.txt (project)"


def _read(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path}: missing; run the Tucker steps for this scale first")
    return read_json(path)


def load(results: Path, cfg: dict) -> list[dict]:
    """Per network: its dense, post-hoc and trained summaries."""
    study = results / "tucker"
    return [
        {step: _read(study / net / f"{step}.json") for step in ("dense", "posthoc", "trained")}
        for net in cfg["networks"]
    ]


def _ranks(layers: list[dict], key) -> str:
    return "; ".join(f"{layer['layer']}: {key(layer)}" for layer in layers)


def posthoc_table(run: dict) -> pd.DataFrame:
    """One row per seed and rank rule: ranks, accuracies, cost and CPU time."""
    rows = []
    for rec in run["posthoc"]["records"]:
        dc, tc = rec["dense_cost"], rec["tucker_cost"]
        rows.append(
            {
                "rule": rec["rule"],
                "seed": rec["seed"],
                "ranks (r_out x r_in)": _ranks(
                    rec["layers"], lambda x: f"{x['r_out']}x{x['r_in']}"
                ),
                "acc dense": round(rec["dense_test_acc"], 4),
                "acc decomposed": round(rec["decomposed_test_acc"], 4),
                "acc fine-tuned": round(rec["finetuned_test_acc"], 4),
                "MACs dense": dc["macs"],
                "MACs Tucker": tc["macs"],
                "params dense": dc["params"],
                "params Tucker": tc["params"],
                "CPU ms dense": round(1000 * rec["dense_time"]["median_s"], 2),
                "CPU ms Tucker": round(1000 * rec["tucker_time"]["median_s"], 2),
            }
        )
    return pd.DataFrame(rows)


def layer_table(run: dict) -> pd.DataFrame:
    """Per decomposed layer: ranks, sensitivity, ptflops MACs beside the analytic count."""
    rows = []
    for rec in run["posthoc"]["records"]:
        for x in rec["layers"]:
            rows.append(
                {
                    "rule": rec["rule"],
                    "seed": rec["seed"],
                    "layer": x["layer"],
                    "Cout x Cin x K": f"{x['out_channels']}x{x['in_channels']}x{x['kernel'][0]}",
                    "r_out": x["r_out"],
                    "r_in": x["r_in"],
                    "sensitivity (pts)": round(100 * x["sensitivity"], 2),
                    "MACs dense": x["dense"]["macs"],
                    "MACs Tucker (ptflops)": x["tucker"]["macs"],
                    "MACs Tucker (analytic)": x["analytic_macs"],
                    "params dense": x["dense"]["params"],
                    "params Tucker": x["tucker"]["params"],
                }
            )
    return pd.DataFrame(rows)


def trained_table(run: dict) -> pd.DataFrame:
    """Per seed: HOOI ranks, accuracy, convergence and cost of the from-scratch Tucker net."""
    rows = []
    for rec in run["trained"]["records"]:
        rows.append(
            {
                "seed": rec["seed"],
                "ranks (N' x C' x D')": _ranks(
                    rec["layers"], lambda x: "x".join(map(str, x["ranks"]))
                ),
                "acc dense": round(rec["dense_test_acc"], 4),
                "acc Tucker": round(rec["test_acc"], 4),
                "iters to target dense": rec["dense_iters_to_target"],
                "iters to target Tucker": rec["iters_to_target"],
                "train s dense": round(rec["dense_train_seconds"], 1),
                "train s Tucker": round(rec["train_seconds"], 1),
                "MACs dense": rec["dense_cost"]["macs"],
                "MACs Tucker": rec["tucker_cost"]["macs"],
                "params dense": rec["dense_cost"]["params"],
                "params Tucker": rec["tucker_cost"]["params"],
                "CPU ms dense": round(1000 * rec["dense_time"]["median_s"], 2),
                "CPU ms Tucker": round(1000 * rec["tucker_time"]["median_s"], 2),
            }
        )
    return pd.DataFrame(rows)


def _energy(values: list[float], k: int) -> float:
    power = np.asarray(values, dtype=float) ** 2
    return float(power[:k].sum() / power.sum()) if power.sum() else 1.0


def measured_rows(runs: list[dict], cfg: dict) -> pd.DataFrame:
    """Long-format rows of every tucker_posthoc.* and tucker_trained.* metric, per seed."""
    rows: list[dict] = []

    def add(metric: str, value: float, seed: int, **keys) -> None:
        rows.append({"metric": metric, **keys, "seed": seed, "value": float(value)})

    threshold = 100 * cfg["search_threshold"]
    for run in runs:
        model = run["posthoc"]["network"]
        for rec in run["posthoc"]["records"]:
            seed, rule = rec["seed"], rec["rule"]
            if rule == run["posthoc"]["settings"]["rank_rules"][0]:
                add("tucker_posthoc.test_acc", rec["dense_test_acc"], seed, model=model,
                    rule="none", stage="dense")  # fmt: skip
            for stage in ("decomposed", "finetuned"):
                acc = rec[f"{stage}_test_acc"]
                add("tucker_posthoc.test_acc", acc, seed, model=model, rule=rule, stage=stage)
                add("tucker_posthoc.acc_drop", 100 * (rec["dense_test_acc"] - acc), seed,
                    model=model, rule=rule, stage=stage, threshold_pts=threshold)  # fmt: skip
            dc, tc = rec["dense_cost"], rec["tucker_cost"]
            add("tucker_posthoc.speedup", dc["macs"] / tc["macs"], seed, model=model, rule=rule,
                layer="all", measure="multiply_count")  # fmt: skip
            add("tucker_posthoc.speedup", rec["dense_time"]["median_s"] /
                rec["tucker_time"]["median_s"], seed, model=model, rule=rule, layer="all",
                measure="cpu_time")  # fmt: skip
            add("tucker_posthoc.params_ratio", tc["params"] / dc["params"], seed, model=model,
                rule=rule, layer="all")  # fmt: skip
            for x in rec["layers"]:
                layer = x["layer"]
                add("tucker_posthoc.speedup", x["dense"]["macs"] / x["tucker"]["macs"], seed,
                    model=model, rule=rule, layer=layer, measure="multiply_count")  # fmt: skip
                add("tucker_posthoc.params_ratio", x["tucker"]["params"] / x["dense"]["params"],
                    seed, model=model, rule=rule, layer=layer)  # fmt: skip
                for mode, full in (("out", x["out_channels"]), ("in", x["in_channels"])):
                    add("tucker_posthoc.selected_rank", x[f"r_{mode}"], seed, model=model,
                        rule=rule, layer=layer, mode=mode, full_rank=full,
                        sensitivity=100 * x["sensitivity"])  # fmt: skip
        for rec in run["trained"]["records"]:
            seed = rec["seed"]
            add("tucker_trained.test_acc", rec["test_acc"], seed, model=model)
            dense_it, tucker_it = rec["dense_iters_to_target"], rec["iters_to_target"]
            if dense_it and tucker_it:
                add("tucker_trained.convergence_speedup", dense_it / tucker_it, seed, model=model)
            add("tucker_trained.speedup", rec["dense_cost"]["macs"] / rec["tucker_cost"]["macs"],
                seed, model=model, layer="all", measure="macs")  # fmt: skip
            add("tucker_trained.speedup", rec["dense_time"]["median_s"] /
                rec["tucker_time"]["median_s"], seed, model=model, layer="all",
                measure="cpu_time")  # fmt: skip
            for x in rec["layers"]:
                layer, (p, q, r) = x["layer"], x["ranks"]
                dense_params = x["dense"]["params"]
                add("tucker_trained.speedup", x["dense"]["macs"] / x["realized"]["macs"], seed,
                    model=model, layer=layer, measure="macs")  # fmt: skip
                add("tucker_trained.speedup", 1 / (p * q * r), seed, model=model, layer=layer,
                    measure="naive_macs")  # fmt: skip
                if x["naive"]:
                    add("tucker_trained.speedup", x["naive"]["dense_s"] / x["naive"]["naive_s"],
                        seed, model=model, layer=layer, measure="naive_time",
                        analytic=1 / (p * q * r))  # fmt: skip
                analytic = x["params_analytic"] / dense_params
                add("tucker_trained.params_ratio", x["params_counted"] / dense_params, seed,
                    model=model, layer=layer, analytic=analytic)  # fmt: skip
                for mode, k, full, sv in zip("NCD", x["ranks"], x["full_ranks"],
                                             x["hooi_sv_scaled"], strict=True):  # fmt: skip
                    add("tucker_trained.rank", k, seed, model=model, layer=layer,
                        method="hooi_sv", mode=mode, full_rank=full,
                        energy_captured=_energy(sv, k),
                        energy_target=run["trained"]["hooi_energy"])  # fmt: skip
    return pd.DataFrame(rows)


def _html_table(frame: pd.DataFrame) -> str:
    return (
        '<div class="scroll">'
        + frame.to_html(index=False, classes="sortable", na_rep="never", border=0)
        + "</div>"
    )


def _write(out: Path, name: str, frame: pd.DataFrame) -> None:
    write_with(out / "tables" / f"{name}.csv", lambda p: frame.to_csv(p, index=False))
    write_text(out / "tables" / f"{name}.md", tables.to_markdown(frame))


def scale_note(scale: str, cfg: dict, first: dict) -> str:
    if scale == "paper":
        return ""
    d = first["dense"]
    return (
        f"{scale} scale: {d['dataset_label']} instead of CIFAR-10, {d['train_images']} training "
        f"images, {cfg['epochs']} epoch(s), {cfg['finetune_epochs']} fine-tuning epoch(s), "
        f"{len(cfg['seeds'])} seed(s)"
    )


def build(results: Path, cfg: dict, scale: str, out: Path) -> Section:
    runs = load(results, cfg)
    pareto_path = results / "tucker" / "pareto.csv"
    if not pareto_path.is_file():
        raise UserError(f"{pareto_path}: missing; run the Tucker pareto step first")
    pareto = pd.read_csv(pareto_path)
    first = runs[0]["dense"]
    label = html_lib.escape(first["dataset_label"])
    where = f"{label}; {scale} scale"
    parts = [
        f'<h2 id="{ANCHOR}">Tucker decomposition of convolutions ({SOURCES})</h2>',
        "<p>Post-hoc (seed 002): each trained KxK convolution is decomposed by HOOI on its "
        "two channel modes (tensorly <code>partial_tucker</code>) into 1x1 &rarr; KxK core "
        "&rarr; 1x1 convolutions, with ranks from the blog's search (one rank per layer, grown "
        f"from 1 in steps of {cfg['search_step']} until the validation accuracy with that "
        f"layer alone decomposed is within {100 * cfg['search_threshold']:.3g} points of "
        f"dense) or from an energy criterion (keep {100 * cfg['energy']:.3g}% of each "
        "unfolding's squared singular values); all layers are then decomposed at once and "
        f"fine-tuned for {cfg['finetune_epochs']} epoch(s). VBMF rank selection is not run: the "
        "only implementation on PyPI (musco-pytorch 1.0.6, 2020) pins tensorly 0.4.5. "
        "Trained from scratch (seed 003): every KxK convolution becomes "
        "[[G; W_N, W_C, W_D]] with the spatial dims flattened, with ranks N', C', D' keeping "
        f"{100 * cfg['hooi_energy']:.3g}% of the energy of the singular values of the HOOI "
        "factors of the trained dense kernel, each factor scaled by the core (the factors "
        "themselves are orthonormal: their singular values are all 1, recorded in trained.json)."
        "</p>",
        f'<p class="meta">Data: {label} (checksum <code>{first["dataset_checksum"]}</code>); '
        f"{first['train_images']} training, {first['val_images']} validation (search, curves), "
        f"{first['test_images']} of {first['test_images_available']} test images. MACs and "
        "parameters by ptflops on the realized convolutions (MACs per image); CPU time: median "
        "of timed forward passes after warm-up, threads as stated in the JSONs, on a machine "
        "shared with other jobs (compare ratios, not absolute times).</p>",
    ]
    for run in runs:
        net = run["posthoc"]["network"]
        threads = run["posthoc"]["records"][0]["dense_time"]["threads"]
        batch = run["posthoc"]["records"][0]["dense_time"]["batch"]
        post, layers, trained = posthoc_table(run), layer_table(run), trained_table(run)
        _write(out, f"tucker_posthoc_{net}", post)
        _write(out, f"tucker_posthoc_layers_{net}", layers)
        _write(out, f"tucker_trained_{net}", trained)
        parts += [
            f"<h3>{html_lib.escape(net)}: post-hoc Tucker-2 ({where})</h3>",
            f"<p>Test accuracy (fraction), MACs and parameters per image, CPU ms per batch of "
            f"{batch} on {threads} thread(s).</p>",
            _html_table(post),
            f"<p>Per layer ({where}; sensitivity: validation points lost with that layer alone "
            f"at {100 * cfg['sensitivity_fraction']:.3g}% of each mode's size).</p>",
            _html_table(layers),
            f"<h3>{html_lib.escape(net)}: Tucker-factorized, trained from scratch ({where})</h3>",
            f"<p>Same training budget as dense; iterations until validation accuracy first "
            f"reaches {cfg['target_acc']} (checked every {cfg['curve_every']} iterations; "
            "'never' if not within the budget). CPU ms per batch of "
            f"{batch} on {threads} thread(s), realized as 1x1-core-1x1 convolutions.</p>",
            _html_table(trained),
        ]
    scatter = figures.save(
        accuracy_vs_macs(pareto, where), out / "figures" / "tucker_accuracy_vs_macs.png"
    )
    curves = figures.save(
        convergence(runs, cfg["target_acc"], where), out / "figures" / "tucker_convergence.png"
    )
    parts += [
        f"<h3>Accuracy vs MACs ({where})</h3>",
        f'<img src="{scatter}" alt="test accuracy vs MACs per image of every Tucker model">',
        f"<h3>Convergence, dense vs Tucker-factorized ({where})</h3>",
        f'<img src="{curves}" alt="validation accuracy vs iteration, dense and Tucker">',
    ]
    measured = measured_rows(runs, cfg)
    seconds = (
        sum(r["train_seconds"] for run in runs for r in run["dense"]["runs"])
        + sum(rec["finetune"]["train_seconds"] for run in runs for rec in run["posthoc"]["records"])
        + sum(rec["train_seconds"] for run in runs for rec in run["trained"]["records"])
    )
    subsets = (
        f"first {first['train_images']} training / {first['val_images']} validation / "
        f"{first['test_images']} test images"
    )
    return Section(
        key="tucker_posthoc",
        title="Tucker decomposition (seeds 002, 003)",
        anchor=ANCHOR,
        html="\n".join(parts),
        measured=measured,
        scale_note=scale_note(scale, cfg, runs[0]),
        datasets=[DatasetUse(first["dataset_label"], first["dataset_checksum"], subsets)],
        train_seconds=seconds,
        run=RunProtocol(
            datasets={"cifar10": first["dataset"]},
            full_size=True,
            epochs=cfg["epochs"],
            converged_by=f"{PAPER_EPOCHS} epochs, the paper-scale schedule"
            if cfg["epochs"] >= PAPER_EPOCHS
            else None,
            seeds=len(runs),
        ),
    )


def accuracy_vs_macs(pareto: pd.DataFrame, where: str):
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    sns.scatterplot(data=pareto, x="macs", y="test_acc", hue="method", style="network", s=60, ax=ax)
    ax.ticklabel_format(style="sci", axis="x", scilimits=(0, 0))
    ax.set_xlabel("MACs per image (ptflops)")
    ax.set_ylabel("test accuracy (fraction)")
    ax.set_title(f"Tucker study: accuracy vs MACs ({where})", fontsize=9)
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig


def convergence(runs: list[dict], target: float, where: str):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3), squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        for rec in run["trained"]["records"]:
            for key, name in (("dense_curve", "dense"), ("curve", "Tucker")):
                pts = rec[key]
                ax.plot(
                    [p["iteration"] for p in pts],
                    [p["acc"] for p in pts],
                    label=f"{name}, seed {rec['seed']}",
                )
        ax.axhline(target, color="black", lw=0.6, ls="--")
        ax.set_title(f"{run['trained']['network']} ({where})", fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("validation accuracy (fraction)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
