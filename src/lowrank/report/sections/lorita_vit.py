"""Report section of LoRITa on ViTs (seed 004): Tables 1-2's ViT accuracies beside the
paper's, the truncation curves of Figures 5-6, compression within the drop tolerance, and
dense costs (ptflops beside the analytic count with the attention products ptflops misses).

Reads results/<scale>/lorita_vit/<config>_N<n>/{summary.json, sweep.csv}.
"""

from __future__ import annotations

import html
from pathlib import Path

from lowrank.report import figures
from lowrank.report.section import Section
from lowrank.report.sections.lorita_models import (
    accuracy_table,
    claims,
    compression_summary,
    data_sentence,
    datasets,
    flops_table,
    html_table,
    measurements,
    paper_lookup,
    read_study,
    run_protocol,
    scale_note,
    truncation_figure,
    write_tables,
)

PAPER_EPOCHS = 200  # not given by the paper; what our paper scale uses


def build(results: Path, cfg: dict, scale: str, out: Path) -> Section:
    summaries, sweep = read_study(results, "lorita_vit", cfg)
    paper = paper_lookup(
        claims("lorita_vit."), "lorita_vit.test_acc", {"model": "tag", "augmentation": "augment"}
    )
    table = accuracy_table(summaries, paper)
    summary = compression_summary(sweep, cfg["drop_tolerance"])
    flops = flops_table(sweep, summaries)
    write_tables(
        out,
        {
            "lorita_vit_accuracy": table,
            "lorita_vit_compression_summary": summary,
            "lorita_vit_flops": flops,
        },
    )
    labels = ", ".join(sorted({s["dataset_label"] for s in summaries}))
    sweep = sweep.assign(
        model=sweep["model"] + sweep["augmentation"].map({True: " aug", False: ""})
    )
    image = figures.save(
        truncation_figure(sweep, f"LoRITa ViTs, {labels}, {scale} scale"),
        out / "figures" / "lorita_vit_truncation_curves.png",
    )
    measured = measurements(
        "lorita_vit",
        summaries,
        sweep.assign(model=sweep["model"].str.removesuffix(" aug")),
        cfg["drop_tolerance"],
        ("model", "dataset", "augmentation"),
    )
    s = summaries[0]["model_kwargs"]
    e = html.escape
    body = f"""
<h2 id="lorita-vit">LoRITa on vision transformers (seed 004, Tables 1-2, Figures 5-6)</h2>
<p>SimpleViT (Beyer et al. 2022, the ViT the paper cites): {s["patch_size"]}x{s["patch_size"]}
patches, hidden width {s["dim"]} x {s["width"]:g} (the paper's width was lost; see params.yaml),
MLP width {s["mlp_dim"]} x {s["width"]:g}, L blocks and H heads as named (ViT-L<i>n</i>-H<i>m</i>).
Query, key, value, output and MLP projections (and the patch embedding and head) are trained
as N factors and truncated; GSVT ranks attention projections and the other Linear layers in
separate pools, as the paper does. LayerNorm is never factorized.</p>
{data_sentence(summaries, scale)}
<h3>Tables 1-2 analogue: test accuracy</h3>
<p>Test accuracy (fraction) on {e(labels)}, {scale} scale; the paper's value only where our
data are the paper's dataset (Table 2's LoRITa column lost its N: shown for every N &gt; 1).</p>
{html_table(table)}
<h3>Truncation curves (Figures 5-6)</h3>
<p>Test accuracy drop (points) against the retained share of singular values; band: range over
seeds. {e(labels)}, {scale} scale.</p>
<img src="{image}" alt="accuracy drop against retained singular values for the ViTs">
<h3>Compression within {100 * cfg["drop_tolerance"]:g} point(s)</h3>
{html_table(summary)}
<h3>Cost of the dense models</h3>
<p>MACs per 32x32 image: ptflops counts modules only and cannot see the attention products
q k<sup>T</sup> and (softmax) v; <code>attention_macs_analytic</code> counts them
(2 x tokens<sup>2</sup> x width per block) and <code>conv_linear_macs</code> includes them.</p>
{html_table(flops)}
"""
    return Section(
        key="lorita_vit",
        title="LoRITa on ViTs",
        anchor="lorita-vit",
        html=body,
        measured=measured,
        scale_note=scale_note(summaries, PAPER_EPOCHS),
        run=run_protocol(summaries, PAPER_EPOCHS),
        datasets=datasets(summaries),
        train_seconds=sum(r["train_seconds"] for s in summaries for r in s["runs"]),
    )
