"""Tables of the FCN study, computed from results files only."""

from __future__ import annotations

import math

import pandas as pd

from lowrank.report.comparability import RunProtocol
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


def table1(
    summaries: list[dict],
    paper_values: dict[tuple[int, int], float],
    run: RunProtocol | None = None,
) -> pd.DataFrame:
    """Test accuracy per depth and N: mean, sd and count over seeds, beside the paper, and
    whether the row's runs are trained to convergence (`run`: the study's run protocol)."""
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
                "lr": s["lr"],
                "schedule": s.get("schedule") or "constant",
                "architecture": "Linear+ReLU+BatchNorm"
                if s.get("batchnorm", True)
                else "Linear+ReLU",
                "converged": run is not None
                and bool(run.converged_by)
                and {"depth": s["depth"], "n_factors": s["n_factors"]} not in run.unconverged,
                "paper": paper,
                "ours_minus_paper": round(mean - paper, 4),
            }
        )
    return pd.DataFrame(rows).sort_values(["model", "N"], key=_natural).reset_index(drop=True)


def _natural(col: pd.Series) -> pd.Series:
    return col.map(lambda v: int(v.split("-")[1]) if isinstance(v, str) else v)


def min_retained_per_seed(sweep: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per depth, N, head choice, method and seed: the smallest realized retained share (the
    paper's axis) whose accuracy drop stays within `tolerance`, with its MACs and parameters.
    Points are taken per seed because GSVT's refined targets differ between seeds."""
    if "head" not in sweep.columns:
        sweep = sweep.assign(head="truncated")
    rows = []
    keys = ["depth", "n_factors", "head", "method", "seed"]
    for key, group in sweep.groupby(keys):
        ok = group[group["acc_drop"] <= tolerance + 1e-12].sort_values("retained_fraction")
        row = dict(zip(keys, key, strict=True))
        if len(ok):
            best = ok.iloc[0]
            row.update(
                retained_fraction=best["retained_fraction"],
                acc_drop=best["acc_drop"],
                macs_share=best["macs"] / best["base_macs"],
                params_share=best["params"] / best["base_params"],
            )
        rows.append(row)
    return pd.DataFrame(rows)


def compression_summary(sweep: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per depth, N, head choice and method: the smallest retained share within `tolerance`
    (mean over seeds, with the seeds' range), with the FLOPs and parameters kept there."""
    per_seed = min_retained_per_seed(sweep, tolerance)
    rows = []
    for (depth, n, head, method), group in per_seed.groupby(
        ["depth", "n_factors", "head", "method"]
    ):
        found = group.dropna(subset=["retained_fraction"]) if "retained_fraction" in group else []
        complete = len(found) == len(group)
        pct = 100 * found["retained_fraction"] if len(found) else None
        rows.append(
            {
                "model": f"FCN-{depth}",
                "N": n,
                "head": head,
                "method": method,
                "min_retained_pct": round(pct.mean(), 1) if complete else None,
                "seed_range_pct": f"{pct.min():.1f}-{pct.max():.1f}" if complete else None,
                "seeds": len(group),
                "acc_drop_pts": round(100 * found["acc_drop"].mean(), 2) if complete else None,
                "macs_pct_of_dense": round(100 * found["macs_share"].mean(), 1)
                if complete
                else None,
                "params_pct_of_dense": round(100 * found["params_share"].mean(), 1)
                if complete
                else None,
            }
        )
    return pd.DataFrame(rows)


def verdict_lorita_compresses_better(summary: pd.DataFrame) -> list[str]:
    """Plain sentences: does N > 1 need fewer singular values than N = 1 for the same drop?"""
    lines = []
    for (model, head, method), group in summary.groupby(["model", "head", "method"], sort=False):
        by_n = dict(zip(group["N"], group["min_retained_pct"], strict=True))
        if 1 not in by_n or len(by_n) < 2:
            continue
        base = by_n[1]
        for n, pct in sorted(by_n.items()):
            if n == 1:
                continue
            label = f"{model} {method} (head {head})"
            if pct is None or base is None or pd.isna(pct) or pd.isna(base):
                lines.append(
                    f"{label}: N={n} vs N=1: no grid point within tolerance "
                    f"for {'N=' + str(n) if pct is None or pd.isna(pct) else 'N=1'}."
                )
                continue
            word = "yes" if pct < base else "no" if pct > base else "tie"
            lines.append(
                f"{label}: N={n} needs {pct}% of singular values vs {base}% "
                f"for N=1: compresses better with LoRITa: {word}."
            )
    return lines


def head_findings(sweep: pd.DataFrame, summary: pd.DataFrame, paper: dict[int | None, float]):
    """Plain sentences on the classifier head: where a truncated 500 -> 10 head at rank 1
    alone takes accuracy to chance, and which head choice the paper's FCN-10 GSVT numbers
    (`paper`: N -> min retained %, None = LoRITa with its lost N) lie closer to."""
    lines = []
    if "head" not in sweep.columns:
        return lines
    cut = sweep[(sweep["head"] == "truncated") & (sweep["head_rank"] == 1)]
    for (depth, method), g in cut.groupby(["depth", "method"]):
        chance = g[g["test_acc"] < 0.2]
        if len(chance):
            share = 100 * chance["retained_fraction"].max()
            lines.append(
                f"FCN-{depth} {method}, head truncated: the 500 -> 10 classifier is at rank 1 and "
                f"accuracy is at chance (below 0.2) up to {share:.1f}% retained, whatever the "
                "other layers keep."
            )
    fcn10 = summary[(summary["model"] == "FCN-10") & (summary["method"] == "GSVT")]
    if len(fcn10) and paper:
        gaps = {}
        for head, g in fcn10.groupby("head"):
            by_n = dict(zip(g["N"], g["min_retained_pct"], strict=True))
            ours = [
                (by_n.get(1), paper.get(1)),
                (
                    min((v for n, v in by_n.items() if n > 1 and v is not None), default=None),
                    paper.get(None),
                ),
            ]
            pairs = [(a, b) for a, b in ours if a is not None and b is not None and not pd.isna(a)]
            if pairs:
                gaps[head] = sum(abs(a - b) for a, b in pairs) / len(pairs)
        if gaps:
            best = min(gaps, key=gaps.get)
            text = ", ".join(f"head {h}: {v:.1f} points" for h, v in sorted(gaps.items()))
            lines.append(
                "The paper's FCN-10 GSVT shares (N=1 and LoRITa) are closest to our curves with "
                f"the head {best} (mean distance {text})."
            )
    return lines


def to_markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False) + "\n"
