"""Long-format table of every measured metric of the FCN study, per seed.

This is what the claims ledger compares with the sources; metric names and units are those
of workflow/schemas/metrics.yaml.
"""

from __future__ import annotations

import pandas as pd

from lowrank.report.tables import min_retained_per_seed
from lowrank.train.lorita_fcn import selected_runs

DECAY_THRESHOLD = 0.01  # spectrum_decay: share of singular values above 1% of the largest


def fcn_measurements(
    summaries: list[dict], sweep: pd.DataFrame, spectra: dict, tolerance: float
) -> pd.DataFrame:
    rows: list[dict] = []
    epoch_seconds: dict = {}
    for s in summaries:
        for run in selected_runs(s):
            key = {"depth": s["depth"], "n_factors": s["n_factors"], "seed": run["seed"]}
            rows.append({"metric": "lorita_fcn.test_acc", **key, "value": run["test_acc"]})
            seconds = [h["seconds"] for h in run["history"]]
            epoch_seconds[(s["depth"], s["n_factors"], run["seed"])] = sum(seconds) / len(seconds)
    for (depth, n, seed), sec in epoch_seconds.items():
        base = epoch_seconds.get((depth, 1, seed))
        if n > 1 and base:
            rows.append(
                {
                    "metric": "lorita.train_time_ratio",
                    "depth": depth,
                    "n_factors": n,
                    "seed": seed,
                    "value": sec / base,
                }
            )
    for _, best in min_retained_per_seed(sweep, tolerance).iterrows():
        if pd.isna(best.get("retained_fraction")):
            continue
        rows.append(
            {
                "metric": "lorita_fcn.min_retained_pct",
                "depth": best["depth"],
                "n_factors": best["n_factors"],
                "seed": best["seed"],
                "method": best["method"],
                "head": best["head"],
                "value": 100 * best["retained_fraction"],
            }
        )
    for (depth, n), record in spectra.items():
        for seed, layers in record["spectra"].items():
            for layer, values in enumerate(list(layers.values())[:2], start=1):
                share = sum(v > DECAY_THRESHOLD * values[0] for v in values) / len(values)
                rows.append(
                    {
                        "metric": "lorita_fcn.spectrum_decay",
                        "depth": depth,
                        "n_factors": n,
                        "seed": int(seed),
                        "layer": layer,
                        "value": share,
                    }
                )
    return pd.DataFrame(rows)
