"""results/<scale>/tucker/pareto.csv: every Tucker-study model's accuracy and cost, so the
lead can put every method's points in one Pareto figure. Reads the step JSONs only."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from lowrank.atomic import read_json
from lowrank.errors import UserError
from lowrank.provenance import stamp, write_csv_with_provenance


def _read(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path}: missing; run the previous Tucker step first")
    return read_json(path)


def pareto_rows(posthoc_summary: dict, trained_summary: dict) -> list[dict]:
    """Accuracy and cost points of every model, seed by seed (the lead's Pareto figure)."""
    base = {
        "network": posthoc_summary["network"],
        "dataset": posthoc_summary["dataset"],
        "dataset_label": posthoc_summary["dataset_label"],
    }
    rows = []
    for rec in posthoc_summary["records"]:
        if rec["rule"] == posthoc_summary["settings"]["rank_rules"][0]:
            rows.append(
                {
                    "method": "dense",
                    **base,
                    **rec["dense_cost"],
                    "test_acc": rec["dense_test_acc"],
                    "seed": rec["seed"],
                }
            )
        rows.append(
            {
                "method": f"tucker_posthoc_{rec['rule']}",
                **base,
                **rec["tucker_cost"],
                "test_acc": rec["finetuned_test_acc"],
                "seed": rec["seed"],
            }
        )
    for rec in trained_summary["records"]:
        rows.append(
            {
                "method": "tucker_trained",
                **base,
                **rec["tucker_cost"],
                "test_acc": rec["test_acc"],
                "seed": rec["seed"],
            }
        )
    return rows


def write_pareto(block: dict, results: Path, out: Path) -> pd.DataFrame:
    """results/<scale>/tucker/pareto.csv: method, network, dataset, macs, params, test_acc."""
    cfg = block["tucker"]
    t0 = time.perf_counter()
    rows, checksums = [], set()
    for network in cfg["networks"]:
        p = _read(results / network / "posthoc.json")
        t = _read(results / network / "trained.json")
        rows += pareto_rows(p, t)
        checksums.add(p["dataset_checksum"])
    columns = [
        "method",
        "network",
        "dataset",
        "macs",
        "params",
        "test_acc",
        "seed",
        "dataset_label",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    record = stamp(cfg, cfg["seeds"], ",".join(sorted(checksums)), time.perf_counter() - t0)
    write_csv_with_provenance(frame, out, record)
    return frame
