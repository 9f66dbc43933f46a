"""LSVT and GSVT sweeps of trained LoRITa FCNs over a grid of retained fractions.

Each point records test accuracy, its drop from the uncompressed model, and the parameters
and FLOPs (ptflops) of the real compressed model. The singular-value spectra of every layer
are saved too (the paper's Figure 3).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from lowrank.atomic import write_json
from lowrank.data.mnist import load_mnist
from lowrank.measure.flops import ptflops_count
from lowrank.methods.lorita import collapse
from lowrank.methods.truncation import (
    gsvt_ranks,
    layer_svds,
    lsvt_ranks,
    retained_fraction,
    truncate,
)
from lowrank.provenance import stamp, write_csv_with_provenance
from lowrank.train.loop import accuracy
from lowrank.train.lorita_fcn import load_trained

RANKERS = {"LSVT": lsvt_ranks, "GSVT": gsvt_ranks}
INPUT_SHAPE = (1, 28, 28)


def sweep_config(train_dir: Path, fractions: list[float], data_dir: str, block: dict) -> None:
    """Write train_dir/sweep.csv and train_dir/spectra.json for the selected weight decay."""
    t0 = time.perf_counter()
    summary = json.loads((train_dir / "summary.json").read_text())
    splits = load_mnist(data_dir)
    rows, spectra = [], {}
    seeds = sorted({r["seed"] for r in summary["runs"]})
    for seed in seeds:
        dense = collapse(load_trained(train_dir, summary, seed))
        base_acc = accuracy(dense, splits.test_x, splits.test_y)
        base_macs, base_params = ptflops_count(dense, INPUT_SHAPE)
        svds = layer_svds(dense)
        spectra[str(seed)] = {d.name: d.s.tolist() for d in svds}
        for method, ranker in RANKERS.items():
            for fraction in fractions:
                ranks = ranker(svds, fraction)
                model = truncate(dense, svds, ranks)
                acc = accuracy(model, splits.test_x, splits.test_y)
                macs, params = ptflops_count(model, INPUT_SHAPE)
                rows.append(
                    {
                        "depth": summary["depth"],
                        "n_factors": summary["n_factors"],
                        "seed": seed,
                        "weight_decay": summary["selected_weight_decay"],
                        "method": method,
                        "target_fraction": fraction,
                        "retained_fraction": retained_fraction(svds, ranks),
                        "ranks": "-".join(str(ranks[d.name]) for d in svds),
                        "test_acc": acc,
                        "base_test_acc": base_acc,
                        "acc_drop": base_acc - acc,
                        "macs": macs,
                        "params": params,
                        "base_macs": base_macs,
                        "base_params": base_params,
                    }
                )
    record = stamp(block["lorita_fcn"], seeds, splits.checksum, time.perf_counter() - t0)
    write_csv_with_provenance(pd.DataFrame(rows), train_dir / "sweep.csv", record)
    spectra_record = {
        "depth": summary["depth"],
        "n_factors": summary["n_factors"],
        "spectra": spectra,
        "provenance": record,
    }
    write_json(train_dir / "spectra.json", spectra_record)
