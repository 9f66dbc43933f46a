"""Ordering and threshold rules of the Tucker claims (seeds 002, 003) for the claims ledger.

Each rule takes the seed-mean rows of one claim's metric (a DataFrame with `value`, the
selector keys and the extra columns the Tucker section writes, e.g. `threshold_pts`,
`analytic`, `full_rank`) and returns (holds, text with the numbers behind the verdict).
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

LABEL_KEYS = ("model", "rule", "layer", "mode", "measure")


def _label(row: pd.Series) -> str:
    return "/".join(str(row[k]) for k in LABEL_KEYS if k in row.index and pd.notna(row[k]))


def _listing(rows: pd.DataFrame, extra: str | None = None) -> str:
    parts = []
    for _, row in rows.iterrows():
        more = f" ({extra} {row[extra]:.4g})" if extra else ""
        parts.append(f"{_label(row)}: {row['value']:.4g}{more}")
    return "; ".join(parts)


def all_gt_one(rows: pd.DataFrame) -> tuple[bool, str]:
    return bool((rows["value"] > 1).all()), "all > 1? " + _listing(rows)


def all_lt_one(rows: pd.DataFrame) -> tuple[bool, str]:
    return bool((rows["value"] < 1).all()), "all < 1? " + _listing(rows)


def within_threshold(rows: pd.DataFrame) -> tuple[bool, str]:
    """Accuracy drops (points) at most the search threshold (points) carried by each row."""
    holds = bool((rows["value"] <= rows["threshold_pts"] + 1e-9).all())
    return holds, "drop <= threshold? " + _listing(rows, "threshold_pts")


def equals_analytic(rows: pd.DataFrame) -> tuple[bool, str]:
    """Counted values equal the formula's (`analytic` column) exactly, up to rounding."""
    diff = (rows["value"] - rows["analytic"]).abs()
    holds = bool((diff <= 1e-9 * rows["analytic"].abs().clip(lower=1)).all())
    return holds, "counted = formula? " + _listing(rows, "analytic")


def near_analytic(rows: pd.DataFrame, factor: float = 4.0) -> tuple[bool, str]:
    """Measured speedups below 1 and within `factor` of the analytic value, both ways."""
    ratio = rows["value"] / rows["analytic"]
    holds = bool(((rows["value"] < 1) & (ratio <= factor) & (ratio >= 1 / factor)).all())
    return holds, f"measured within x{factor:g} of analytic? " + _listing(rows, "analytic")


def captures_energy(rows: pd.DataFrame) -> tuple[bool, str]:
    """Every chosen rank keeps the energy target; at least one mode is compressed."""
    kept = bool((rows["energy_captured"] >= rows["energy_target"] - 1e-12).all())
    compressed = bool((rows["value"] < rows["full_rank"]).any())
    text = "; ".join(
        f"{_label(r)}: {r['value']:.0f} of {r['full_rank']:.0f} "
        f"({100 * r['energy_captured']:.1f}% energy)"
        for _, r in rows.iterrows()
    )
    return kept and compressed, text


def sensitive_layers_higher(rows: pd.DataFrame) -> tuple[bool, str]:
    """Within each model, layer pairs where the more sensitive layer got the larger share of
    its full rank (concordant) against pairs where it got the smaller (discordant)."""
    concordant = discordant = 0
    parts = []
    for model, group in rows.groupby("model"):
        share = group["value"] / group["full_rank"]
        sens = group["sensitivity"]
        for i, j in combinations(range(len(group)), 2):
            sign = (sens.iloc[i] - sens.iloc[j]) * (share.iloc[i] - share.iloc[j])
            concordant += sign > 0
            discordant += sign < 0
        parts.append(
            f"{model}: "
            + ", ".join(
                f"layer {r['layer']} rank {r['value']:.0f}/{r['full_rank']:.0f} "
                f"sensitivity {r['sensitivity']:.2f} pts"
                for _, r in group.iterrows()
            )
        )
    text = f"{concordant} concordant vs {discordant} discordant layer pairs; " + "; ".join(parts)
    return concordant > discordant, text


RULES = {
    "all_gt_one": all_gt_one,
    "all_lt_one": all_lt_one,
    "within_threshold": within_threshold,
    "equals_analytic": equals_analytic,
    "near_analytic": near_analytic,
    "captures_energy": captures_energy,
    "sensitive_layers_higher": sensitive_layers_higher,
}
