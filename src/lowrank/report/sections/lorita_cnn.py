"""Report section of LoRITa on CNNs (seed 004): Table 2's VGG13/ResNet18 accuracies beside
the paper's, the truncation curves of Figure 2 (right) and Figure 4, the smallest retained
fraction within the drop tolerance, and dense costs (ptflops = analytic).

Reads results/<scale>/lorita_cnn/<config>_N<n>/{summary.json, sweep.csv}.
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

PAPER_EPOCHS = 200  # not given by the paper; the CIFAR standard our paper scale uses


def build(results: Path, cfg: dict, scale: str, out: Path) -> Section:
    summaries, sweep = read_study(results, "lorita_cnn", cfg)
    paper = paper_lookup(
        claims("lorita_cnn."),
        "lorita_cnn.test_acc",
        {"model": "tag", "dataset": "requested_dataset"},
    )
    table2 = accuracy_table(summaries, paper).drop(columns=["augmentation"])
    summary = compression_summary(sweep, cfg["drop_tolerance"]).drop(columns=["augmentation"])
    flops = flops_table(sweep, summaries)
    write_tables(
        out,
        {
            "lorita_cnn_table2_accuracy": table2,
            "lorita_cnn_compression_summary": summary,
            "lorita_cnn_flops": flops,
        },
    )
    labels = ", ".join(sorted({s["dataset_label"] for s in summaries}))
    image = figures.save(
        truncation_figure(sweep, f"LoRITa CNNs, {labels}, {scale} scale"),
        out / "figures" / "lorita_cnn_truncation_curves.png",
    )
    measured = measurements(
        "lorita_cnn", summaries, sweep, cfg["drop_tolerance"], ("model", "dataset")
    )
    e = html.escape
    body = f"""
<h2 id="lorita-cnn">LoRITa on CNNs: VGG13, ResNet18 (seed 004, Table 2, Figures 2 right, 4)</h2>
<p>Every convolution (KxK) is trained as the KxK convolution followed by N-1 bias-free 1x1
convolutions, every Linear as N factors; after training the factors are multiplied back into
one kernel (exactly: the collapsed network computes the same function), and the mode-4
unfolding of each kernel (C<sub>out</sub> x C<sub>in</sub>K<sup>2</sup>) is truncated by LSVT
(per layer) or GSVT (convolutions and linear layers in separate pools, each convolution's
singular values divided by its largest, because BatchNorm makes a kernel's scale arbitrary).
A truncated convolution is realized as a KxK convolution to r channels and a 1x1 convolution
whenever that is cheaper; MACs are counted by ptflops on that model.</p>
{data_sentence(summaries, scale)}
<h3>Table 2 analogue: test accuracy</h3>
<p>Test accuracy (fraction) on {e(labels)}, {scale} scale; the paper's value (its Table 2;
its LoRITa column lost its N and is shown for every N &gt; 1) only where our data are the
paper's dataset.</p>
{html_table(table2)}
<h3>Truncation curves (Figure 2 right, Figure 4)</h3>
<p>Test accuracy drop (points) against the share of singular values retained (mean over
matrices, the paper's x-axis); band: range over seeds. {e(labels)}, {scale} scale.</p>
<img src="{image}" alt="accuracy drop against retained singular values for VGG13 and ResNet18">
<h3>Compression within {100 * cfg["drop_tolerance"]:g} point(s)</h3>
<p>Smallest retained share (%) whose seed-mean test accuracy drop is at most
{100 * cfg["drop_tolerance"]:g} point(s), with the MACs and parameters of the realized
compressed model (% of the dense model). {e(labels)}, {scale} scale.</p>
{html_table(summary)}
<h3>Cost of the dense models</h3>
<p>MACs and parameters per image of 32x32 (ptflops, module hooks; equal to our analytic count
where <code>ptflops_equals_analytic</code>); training parameters include LoRITa's factors.
LoRITa changes training only: the collapsed network of every N costs the same.</p>
{html_table(flops)}
"""
    return Section(
        key="lorita_cnn",
        title="LoRITa on CNNs (VGG13, ResNet18)",
        anchor="lorita-cnn",
        html=body,
        measured=measured,
        scale_note=scale_note(summaries, PAPER_EPOCHS),
        run=run_protocol(summaries, PAPER_EPOCHS),
        datasets=datasets(summaries),
        train_seconds=sum(r["train_seconds"] for s in summaries for r in s["runs"]),
    )
