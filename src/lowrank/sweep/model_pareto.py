"""results/<scale>/<study>/pareto.csv of a CNN/ViT study: every realized compressed model
(each sweep point, and the fine-tuned operating points of Tables 3-4) with its MACs,
parameters and test accuracy, for the report's combined accuracy-vs-cost view. pandas only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lowrank.atomic import read_json
from lowrank.errors import UserError
from lowrank.provenance import stamp, write_csv_with_provenance


def network_name(summary: dict) -> str:
    """The architecture as a panel title: the model, and its width when narrowed."""
    width = summary["model_kwargs"].get("width", 1.0)
    return summary["tag"] if width == 1 else f"{summary['tag']} (width x{width:g})"


def pareto_rows(train_dir: Path) -> pd.DataFrame:
    summary = read_json(train_dir / "summary.json")
    sweep = pd.read_csv(train_dir / "sweep.csv")
    n = summary["n_factors"]
    lead = "SVD truncation of a plain model (N=1)" if n == 1 else f"LoRITa N={n}"
    frame = pd.DataFrame(
        {
            "method": lead + ", " + sweep["method"],
            "network": network_name(summary),
            "dataset": summary["dataset"],
            "macs": sweep["macs"],
            "params": sweep["params"],
            "test_acc": sweep["test_acc"],
            "seed": sweep["seed"],
        }
    )
    point_file = train_dir / "structured.json"
    if point_file.is_file():
        points = read_json(point_file)["points"]
        tuned = [p for p in points if p["finetune_steps"] > 0]
        if tuned:
            extra = pd.DataFrame(
                {
                    "method": f"{lead}, operating point + {tuned[0]['finetune_steps']} "
                    "fine-tuning steps",
                    "network": network_name(summary),
                    "dataset": summary["dataset"],
                    "macs": [p["macs_after"] for p in tuned],
                    "params": [p["params_after"] for p in tuned],
                    "test_acc": [p["acc_after"] for p in tuned],
                    "seed": [p["seed"] for p in tuned],
                }
            )
            frame = pd.concat([frame, extra], ignore_index=True)
    return frame


def write_pareto(study_dir: Path, jobs: list[str], cfg: dict, out: Path) -> pd.DataFrame:
    frames = []
    for job in jobs:
        folder = study_dir / job
        if not (folder / "sweep.csv").is_file():
            raise UserError(f"{folder / 'sweep.csv'}: missing; run the sweep first")
        frames.append(pareto_rows(folder))
    frame = pd.concat(frames, ignore_index=True)
    write_csv_with_provenance(frame, out, stamp(cfg, cfg["seeds"], "see each summary.json", 0.0))
    return frame
