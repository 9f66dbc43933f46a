"""Tables of the FCN study, computed from results files only."""

from __future__ import annotations

import math

import pandas as pd

from lowrank.train.lorita_fcn import selected_runs


def paper_table1(claims: list[dict]) -> dict[tuple[int, int], float]:
    """The paper's Table 1 FCN accuracies, read from the claims ledger (typed once there)."""
    return {
        (c["selector"]["depth"], c["selector"]["n_factors"]): c["paper_value"]
        for c in claims
        if c["metric"] == "lorita_fcn.test_acc"
        and c["location"] == "Table 1"
        and c["paper_value"] is not None
    }


def table1(summaries: list[dict], paper_values: dict[tuple[int, int], float]) -> pd.DataFrame:
    """Test accuracy per depth and N: mean, sd and count over seeds, beside the paper."""
    rows = []
    for s in summaries:
        accs = [r["test_acc"] for r in selected_runs(s)]
        mean = sum(accs) / len(accs)
        sd = (
            math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1))
            if len(accs) > 1
            else float("nan")
        )
        paper = paper_values.get((s["depth"], s["n_factors"]), float("nan"))
        rows.append(
            {
                "model": f"FCN-{s['depth']}",
                "N": s["n_factors"],
                "test_acc_mean": round(mean, 4),
                "test_acc_sd": round(sd, 4),
                "seeds": len(accs),
                "weight_decay": s["selected_weight_decay"],
                "epochs": s["epochs"],
                "paper": paper,
                "ours_minus_paper": round(mean - paper, 4),
            }
        )
    return pd.DataFrame(rows).sort_values(["model", "N"], key=_natural).reset_index(drop=True)


def _natural(col: pd.Series) -> pd.Series:
    return col.map(lambda v: int(v.split("-")[1]) if isinstance(v, str) else v)


def compression_summary(sweep: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per depth, N and method: the smallest retained fraction whose accuracy drop stays within
    `tolerance` (averaged over seeds), with the FLOPs and parameters kept there."""
    mean = sweep.groupby(["depth", "n_factors", "method", "target_fraction"], as_index=False)[
        ["retained_fraction", "acc_drop", "macs", "params", "base_macs", "base_params"]
    ].mean()
    rows = []
    for (depth, n, method), group in mean.groupby(["depth", "n_factors", "method"]):
        ok = group[group["acc_drop"] <= tolerance].sort_values("retained_fraction")
        best = ok.iloc[0] if len(ok) else None
        rows.append(
            {
                "model": f"FCN-{depth}",
                "N": n,
                "method": method,
                "min_retained_pct": None
                if best is None
                else round(100 * best["retained_fraction"], 1),
                "acc_drop_pts": None if best is None else round(100 * best["acc_drop"], 2),
                "macs_pct_of_dense": None
                if best is None
                else round(100 * best["macs"] / best["base_macs"], 1),
                "params_pct_of_dense": None
                if best is None
                else round(100 * best["params"] / best["base_params"], 1),
            }
        )
    return pd.DataFrame(rows)


def verdict_lorita_compresses_better(summary: pd.DataFrame) -> list[str]:
    """Plain sentences: does N > 1 need fewer singular values than N = 1 for the same drop?"""
    lines = []
    for (model, method), group in summary.groupby(["model", "method"], sort=False):
        by_n = dict(zip(group["N"], group["min_retained_pct"], strict=True))
        if 1 not in by_n or len(by_n) < 2:
            continue
        base = by_n[1]
        for n, pct in sorted(by_n.items()):
            if n == 1:
                continue
            if pct is None or base is None:
                lines.append(
                    f"{model} {method}: N={n} vs N=1: no grid point within tolerance "
                    f"for {'N=' + str(n) if pct is None else 'N=1'}."
                )
                continue
            word = "yes" if pct < base else "no" if pct > base else "tie"
            lines.append(
                f"{model} {method}: N={n} needs {pct}% of singular values vs {base}% "
                f"for N=1: compresses better with LoRITa: {word}."
            )
    return lines


def to_markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False) + "\n"
