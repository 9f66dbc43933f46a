"""FLOPs and parameters of every FCN configuration: ptflops beside the analytic count.

LoRITa changes the training-time model only: after `collapse` every N gives the same dense
FCN, so its inference cost is N-independent until truncation. The table shows both.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from lowrank.measure.flops import analytic_fcn, ptflops_count
from lowrank.methods.lorita import collapse, lorita
from lowrank.models.fcn import fcn
from lowrank.provenance import stamp, write_csv_with_provenance

INPUT_SHAPE = (1, 28, 28)


def flops_rows(cfg: dict) -> list[dict]:
    rows = []
    for depth in cfg["depths"]:
        for n in cfg["factors"]:
            bn = cfg.get("batchnorm", False)
            factorized = lorita(fcn(depth, cfg["width"], batchnorm=bn), n)
            macs, params = ptflops_count(collapse(factorized), INPUT_SHAPE)
            a_macs, a_params = analytic_fcn(depth, cfg["width"], batchnorm=bn)
            rows.append(
                {
                    "depth": depth,
                    "n_factors": n,
                    "width": cfg["width"],
                    "inference_macs_ptflops": macs,
                    "inference_macs_analytic": a_macs,
                    "inference_params_ptflops": params,
                    "inference_params_analytic": a_params,
                    "training_params": sum(p.numel() for p in factorized.parameters()),
                    "agree": macs == a_macs and params == a_params,
                }
            )
    return rows


def write_flops_table(cfg: dict, out: Path) -> pd.DataFrame:
    start = time.perf_counter()
    frame = pd.DataFrame(flops_rows(cfg))
    record = stamp(cfg, [], "none (no data: counts from shapes)", time.perf_counter() - start)
    write_csv_with_provenance(frame, out, record)
    return frame
