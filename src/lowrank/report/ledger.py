"""The claims ledger: every quantitative claim of the sources beside our measurement.

Verdicts are computed, never typed: the measured mean over seeds with a 95% bootstrap
interval is compared with the paper's value within the claim's tolerance. Claims about
studies this scale did not run say so; claims whose number or selector was lost in the
source text are "not comparable", with our values shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lowrank.config import read_yaml
from lowrank.errors import UserError
from lowrank.report.comparability import TRANSFERABLE as TRANSFERABLE_MEASURES
from lowrank.report.comparability import ClaimProtocol, RunProtocol, compare
from lowrank.report.tucker_rules import RULES as TUCKER_RULES

REPRODUCED = "reproduced"
BETTER = "reproduced with a better result"
NOT_REPRODUCED = "not reproduced"
IDENTITY = "identity (holds by construction)"
HOLDS_STAND_IN = "holds on stand-in data"
FAILS_STAND_IN = "fails on stand-in data"
HOLDS_REDUCED = "holds at reduced scale"
FAILS_REDUCED = "fails at reduced scale"
NOT_COMPARABLE = "not comparable"
NOT_RUN = "not run at this scale"
VERDICTS = (
    REPRODUCED,
    BETTER,
    NOT_REPRODUCED,
    IDENTITY,
    HOLDS_STAND_IN,
    FAILS_STAND_IN,
    HOLDS_REDUCED,
    FAILS_REDUCED,
    NOT_COMPARABLE,
    NOT_RUN,
)
# Verdicts that judge the claim's own experiment (same dataset, model and budget).
REAL_VERDICTS = (REPRODUCED, BETTER, NOT_REPRODUCED)
VERDICT_CLASS = dict(
    zip(
        VERDICTS,
        (
            "v-reproduced",
            "v-better",
            "v-not-reproduced",
            "v-identity",
            "v-stand-in",
            "v-stand-in-fails",
            "v-stand-in",
            "v-stand-in-fails",
            "v-not-comparable",
            "v-not-run",
        ),
        strict=True,
    )
)
UNIT_SCALE = {("fraction", "percent"): 100.0, ("percent", "fraction"): 0.01}
CLAIM_KEYS = {
    "id",
    "source",
    "location",
    "claim",
    "paper_value",
    "unit",
    "metric",
    "selector",
    "tolerance",
    "tolerance_reason",
    "better",
    "notes",
    "protocol",
}
OPTIONAL_CLAIM_KEYS = {"statement", "sided", "ratio_row"}
STATEMENT_OPS = {"<": lambda a, b: a < b, ">": lambda a, b: a > b}


@dataclass(frozen=True)
class Row:
    """One ledger line, as shown in the report and written to claims_ledger.csv."""

    id: str
    metric: str
    source: str
    location: str
    claim: str
    paper: str
    ours: str
    verdict: str
    reason: str
    protocol: str  # the claim's own protocol differences and caveats
    scale_protocol: str  # what this scale changes (epochs, seeds), for every measured claim
    link: str
    wall_clock: bool  # the metric is (or includes) measured seconds: varies between runs
    measure: str = ""  # the claim's kind of measure (comparability.MEASURES)
    claim_dataset: str = ""  # the dataset the claim was made on ("" if data-independent)
    run_dataset: str = ""  # the dataset our run used in its place ("" if none ran)
    comparable: bool = False  # dataset, model and budget all match the claim's


def load_claims(path: str | Path, metrics: dict) -> list[dict]:
    """Read claims.yaml; every claim must name a metric of the results schema."""
    claims = read_yaml(path)
    ids = set()
    for claim in claims:
        missing = CLAIM_KEYS - set(claim)
        if missing:
            raise UserError(f"{path}: claim {claim.get('id', '?')} lacks {sorted(missing)}")
        if claim["id"] in ids:
            raise UserError(f"{path}: duplicate claim id {claim['id']}")
        ids.add(claim["id"])
        if claim["metric"] not in metrics:
            raise UserError(f"{path}: claim {claim['id']}: unknown metric {claim['metric']}")
        unknown = set(claim) - CLAIM_KEYS - OPTIONAL_CLAIM_KEYS
        if unknown:
            raise UserError(f"{path}: claim {claim['id']}: unknown keys {sorted(unknown)}")
        ClaimProtocol.parse(claim, str(path))
        statement = claim.get("statement")
        if statement is not None and (
            not isinstance(statement, dict)
            or statement.get("op") not in STATEMENT_OPS
            or not isinstance(statement.get("value"), int | float)
        ):
            raise UserError(
                f"{path}: claim {claim['id']}: statement must be {{op: '<' or '>', value: number}}"
            )
        if claim.get("sided", "two") not in ("one", "two"):
            raise UserError(f"{path}: claim {claim['id']}: sided must be one or two")
    for claim in claims:
        row = claim.get("ratio_row")
        if row is not None and row not in ids:
            raise UserError(f"{path}: claim {claim['id']}: ratio_row {row} is not a claim id")
    return claims


def bootstrap_ci(values: list[float], n: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean over seeds (a point when there is one seed)."""
    data = np.asarray(values, dtype=float)
    if len(data) == 1:
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), (n, len(data)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _key(value) -> str:
    """Compare selector values as text, with 8.0 (a column holding NaNs) equal to 8."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _matches(frame: pd.DataFrame, selector: dict) -> pd.DataFrame:
    out = frame
    for key, value in selector.items():
        if key not in out.columns:
            return out.iloc[0:0]
        wanted = {_key(v) for v in (value if isinstance(value, list) else [value])}
        out = out[out[key].map(_key).isin(wanted)]
    return out


def _fmt(value: float, unit: str) -> str:
    return f"{value:.4g} {unit}" if unit not in ("fraction", "ratio", "count") else f"{value:.4g}"


def _comparison(kind: str, rows: pd.DataFrame) -> tuple[bool, str] | None:
    """Ordering claims: does the stated ordering hold in our (seed-mean) numbers?"""
    if rows.empty:
        return None
    mean = (
        rows.groupby(
            [
                c
                for c in rows.columns
                if c not in ("seed", "value", "metric") and rows[c].notna().any()
            ],
            dropna=False,
        )["value"]
        .mean()
        .reset_index()
    )
    if kind == "lorita_lt_n1":
        cases = held = 0
        parts = []
        cols = ("depth", "model", "dataset", "augmentation", "method")
        for keys, group in mean.groupby([c for c in cols if c in mean.columns]):
            by_n = dict(zip(group["n_factors"].astype(int), group["value"], strict=True))
            if 1 not in by_n or len(by_n) < 2:
                continue
            best = min(v for n, v in by_n.items() if n > 1)
            cases += 1
            held += best < by_n[1]
            parts.append(f"{'/'.join(map(str, keys))}: N>1 {best:.0f}% vs N=1 {by_n[1]:.0f}%")
        return (held * 2 > cases, f"holds in {held} of {cases} cases; " + "; ".join(parts))
    if kind == "faster_with_larger_N":
        by_n = dict(zip(mean["n_factors"].astype(int), mean["value"], strict=True))
        ordered = [by_n[n] for n in sorted(by_n)]
        holds = all(a > b for a, b in zip(ordered, ordered[1:], strict=False))
        text = ", ".join(f"N={n}: {by_n[n]:.3f}" for n in sorted(by_n))
        return holds, f"fraction of values above 1% of the largest: {text}"
    if kind == "increasing_in_n":
        by_n = mean.groupby("n_factors")["value"].mean().sort_index()
        ordered = [1.0, *by_n.tolist()]  # the ratio is 1 at N = 1 by definition
        holds = all(a < b for a, b in zip(ordered, ordered[1:], strict=False))
        text = ", ".join(f"N={int(n)}: {v:.2f}x" for n, v in by_n.items())
        return holds, f"seconds per epoch relative to N=1: {text}"
    if kind in ("decreasing_in_N", "one_row_dominates", "positive_for_some_n"):
        return _lorita_models(kind, mean)
    if kind in ("increasing_in_rank", "decline_only_at_lowest_rank"):
        by_rank = mean.groupby(mean["rank"].astype(int))["value"].mean().sort_index()
        return _by_rank(kind, by_rank)
    if kind in RANKCONV_RULES:
        return RANKCONV_RULES[kind](mean)
    if kind in TUCKER_RULES:
        return TUCKER_RULES[kind](mean)
    return None


def _lorita_models(kind: str, mean: pd.DataFrame) -> tuple[bool, str]:
    """Orderings of the CNN/ViT LoRITa studies (seed 004) on seed means: the retained share
    falls with N (per model and method, majority of cases); one N setting beats the other in
    every quantity (all row gaps share a sign); some N > 1 has a positive gap."""
    if kind == "decreasing_in_N":
        cases = held = 0
        parts = []
        keys = [c for c in ("model", "dataset", "augmentation", "method") if c in mean.columns]
        for key, group in mean.groupby(keys):
            by_n = group.groupby(group["n_factors"].astype(int))["value"].mean().sort_index()
            if len(by_n) < 2:
                continue
            cases += 1
            held += all(a > b for a, b in zip(by_n, by_n.iloc[1:], strict=False))
            text = ", ".join(f"N={n}: {v:.0f}%" for n, v in by_n.items())
            parts.append(f"{'/'.join(map(str, key))}: {text}")
        return held * 2 > cases, f"holds in {held} of {cases} cases; " + "; ".join(parts)
    if kind == "one_row_dominates":
        gaps = mean.groupby("quantity")["value"].mean()
        holds = bool((gaps > 0).all() or (gaps < 0).all())
        return holds, "N=2 minus N=3: " + ", ".join(f"{q} {v:+.2f}" for q, v in gaps.items())
    by_n = mean[mean["n_factors"] > 1].groupby(mean["n_factors"].astype(int))["value"].mean()
    holds = bool(len(by_n) and by_n.max() > 0)
    return holds, "gap by N: " + ", ".join(f"N={n}: {v:+.2f}" for n, v in by_n.items())


DECLINE_POINTS = 1.0  # "drops off" vs "does not": more than one point lost after the peak


def _by_rank(kind: str, by_rank: pd.Series) -> tuple[bool, str]:
    """Orderings over low-rank approximations (seed 001): time grows with the rank; only the
    lowest rank's accuracy declines late in training."""
    text = ", ".join(f"rank {r}: {v:.4g}" for r, v in by_rank.items())
    values = by_rank.tolist()
    if kind == "increasing_in_rank":
        holds = all(a < b for a, b in zip(values, values[1:], strict=False))
        return holds, f"by rank: {text}"
    holds = values[0] > DECLINE_POINTS and all(v <= DECLINE_POINTS for v in values[1:])
    return holds, f"decline after the peak (points): {text}"


# Rules of the rank-constrained convolution claims (seed 000). Each case fixes every selector
# column but the compared one; a trend holds if it holds in most cases, on seed means.
def _cases(mean: pd.DataFrame, along: str) -> list[pd.DataFrame]:
    others = [c for c in mean.columns if c not in (along, "value")]
    return [g for _, g in mean.groupby(others, dropna=False)] if others else [mean]


def _label(group: pd.DataFrame, along: str) -> str:
    return ", ".join(f"{c}={group[c].iloc[0]}" for c in group.columns if c not in (along, "value"))


def _trend(mean: pd.DataFrame, along: str, sign: int, corr: bool = False):
    """Strictly monotone in `along` (or, with corr, positively correlated) in most cases."""
    used = []
    for g in _cases(mean, along):
        g = g.assign(_x=pd.to_numeric(g[along], errors="coerce")).dropna(subset=["_x"])
        if g["_x"].nunique() >= 2:
            used.append(g.sort_values("_x"))
    if not used:
        return None
    held = 0
    for g in used:
        v = g["value"].to_numpy(float)
        held += bool(np.corrcoef(g["_x"], v)[0, 1] > 0 if corr else (sign * np.diff(v) > 0).all())
    avg = pd.concat(used).groupby("_x")["value"].mean()
    text = ", ".join(f"{along} {k:g}: {v:.4g}" for k, v in avg.items())
    return held * 2 > len(used), f"holds in {held} of {len(used)} cases; mean over them: {text}"


def _dense_vs_low(mean: pd.DataFrame) -> list[tuple[pd.DataFrame, float, float]]:
    out = []
    for g in _cases(mean, "rank"):
        dense = g.loc[g["rank"].map(_key) == "dense", "value"]
        low = g.loc[g["rank"].map(_key) != "dense", "value"]
        if len(dense) and len(low):
            out.append((g, float(low.mean()), float(dense.iloc[0])))
    return out


def _lowrank_lt_dense(mean: pd.DataFrame):
    pairs = _dense_vs_low(mean)
    if not pairs:
        return None
    held = sum(low < dense for _, low, dense in pairs)
    parts = [f"{_label(g, 'rank')}: low-rank {lo:.4g} vs dense {d:.4g}" for g, lo, d in pairs]
    return held * 2 > len(pairs), f"holds in {held} of {len(pairs)} cases; " + "; ".join(parts)


def _negative(mean: pd.DataFrame):
    held = int((mean["value"] < 0).sum())
    parts = [f"{_label(mean.loc[[i]], '')}: {v:.4g}" for i, v in mean["value"].items()]
    return held * 2 > len(mean), f"below 0 in {held} of {len(mean)} cases; " + "; ".join(parts)


def _advantage_grows(mean: pd.DataFrame):
    """Dense minus low-rank (mean over low ranks), averaged over the other keys, rises with K."""
    rows = [{"kernel": g["kernel"].iloc[0], "value": d - lo} for g, lo, d in _dense_vs_low(mean)]
    adv = pd.DataFrame(rows).groupby("kernel")["value"].mean().sort_index() if rows else None
    if adv is None or len(adv) < 2:
        return None
    holds = bool((np.diff(adv.to_numpy()) > 0).all())
    return holds, "dense minus low-rank: " + ", ".join(f"K={k}: {v:.4g}" for k, v in adv.items())


RANKCONV_RULES = {
    "increasing_in_kernel": lambda m: _trend(m, "kernel", 1),
    "decreasing_in_kernel": lambda m: _trend(m, "kernel", -1),
    "positive_correlation_with_rank": lambda m: _trend(m, "rank", 1, corr=True),
    "lowrank_lt_dense": _lowrank_lt_dense,
    "negative": _negative,
    "lowrank_advantage_grows_with_kernel": _advantage_grows,
}


def judge_number(claim: dict, mean: float, lo: float, hi: float, n: int) -> tuple[str, str]:
    """(verdict among REAL_VERDICTS, reason) for a measured number on the claim's protocol.

    Two-sided claims (the default) are reproduced when the seed mean is within the tolerance
    of the paper's; beyond it on either side they are not reproduced. Where n >= 2 the 95%
    bootstrap interval of the mean is shown, and the reason says when it crosses the
    tolerance band (a verdict the seeds do not settle); an interval never turns a mean
    outside the band into "reproduced" (two seeds, one diverged, span almost anything).
    One-sided claims (`sided: one`, e.g. "over 13x") hold anywhere on their side, and
    beyond the tolerance there count as better. A
    `statement` ({op, value}: the claim's words, e.g. "faster": saving > 0) must hold too,
    so no tolerance can admit the claim's opposite."""
    paper, tol = claim["paper_value"], claim["tolerance"]
    higher = claim["better"] == "higher"
    diff = mean - paper
    interval = n >= 2
    where = f"interval [{lo:.4g}, {hi:.4g}]" if interval else f"n=1 (no interval): {mean:.4g}"
    statement = claim.get("statement")
    if statement is not None:
        holds = STATEMENT_OPS[statement["op"]](mean, statement["value"])
        if not holds:
            return NOT_REPRODUCED, (
                f"the claim's statement (value {statement['op']} {statement['value']:g}) does "
                f"not hold: {mean:.4g}"
            )
    if claim.get("sided", "two") == "one":
        on_side = mean >= paper - tol if higher else mean <= paper + tol
        if not on_side:
            return (
                NOT_REPRODUCED,
                f"one-sided claim; diff {diff:+.3g} beyond tolerance {tol}; {where}",
            )
        beyond = diff > tol if higher else diff < -tol
        if beyond:
            return BETTER, f"one-sided claim; diff {diff:+.3g} beyond tolerance {tol}; {where}"
        return REPRODUCED, f"one-sided claim; within tolerance {tol} or on its side; {where}"
    within = abs(diff) <= tol
    if interval:
        inside = paper - tol <= lo and hi <= paper + tol
        where += "" if inside else ", which crosses the tolerance band: uncertain"
    if within:
        return REPRODUCED, f"within tolerance {tol} of the paper (|diff| {abs(diff):.3g}); {where}"
    side = "better" if (diff > 0) == higher else "worse"
    return NOT_REPRODUCED, (
        f"diff {diff:+.3g} beyond tolerance {tol} ({side} than the paper; two-sided claim); {where}"
    )


def _transfer(comp, holds: bool) -> str:
    if comp.stand_in_data:
        return HOLDS_STAND_IN if holds else FAILS_STAND_IN
    return HOLDS_REDUCED if holds else FAILS_REDUCED


def evaluate(
    claim: dict,
    measured: pd.DataFrame,
    metrics: dict,
    scale: str,
    scale_note: str | dict,
    links: dict,
    runs: dict[str, RunProtocol] | None = None,
) -> Row:
    spec = metrics[claim["metric"]]
    protocol = ClaimProtocol.parse(claim, "claims.yaml")
    run = (runs or {}).get(spec["study"])
    selector = dict(claim.get("selector") or {})
    comparison = selector.pop("comparison", None)
    rows = measured[measured["metric"] == claim["metric"]] if len(measured) else measured
    paper = (
        "n/a (qualitative)"
        if claim["paper_value"] is None
        else _fmt(claim["paper_value"], claim["unit"])
    )

    comp = compare(protocol, run, selector)

    def row(ours: str, verdict: str, reason: str) -> Row:
        note = scale_note.get(spec["study"], "") if isinstance(scale_note, dict) else scale_note
        scale_protocol = note if verdict != NOT_RUN else ""
        return Row(
            claim["id"],
            claim["metric"],
            claim["source"],
            claim["location"],
            claim["claim"],
            paper,
            ours,
            verdict,
            reason,
            claim.get("notes") or "",
            scale_protocol,
            links.get(spec["study"], ""),
            bool(spec.get("wall_clock", False)),
            protocol.measure,
            protocol.dataset or "",
            (run.datasets.get(protocol.dataset, "") if run and protocol.dataset else ""),
            comp.same,
        )

    if not spec.get("produced") or rows.empty:
        why = (
            "this study is not built yet"
            if not spec.get("produced")
            else f"not in the {scale} plan"
        )
        return row("", NOT_RUN, f"{spec['study']}: {why}")
    # A stand-in run labels its rows with the dataset it used: select those instead.
    if run is not None and isinstance(selector.get("dataset"), str):
        selector["dataset"] = run.datasets.get(selector["dataset"], selector["dataset"])
    differences = "; ".join(comp.differences)
    lost = [k for k, v in selector.items() if v is None]
    concrete = {k: v for k, v in selector.items() if v is not None}
    matched = _matches(rows, concrete)
    if matched.empty:
        return row("", NOT_RUN, f"no result for {concrete} at the {scale} scale")
    if comparison:
        result = _comparison(str(comparison), matched)
        if result is None:
            return row(
                "",
                NOT_COMPARABLE,
                f"ordering '{comparison}' cannot be checked: this scale has too few cases",
            )
        holds, text = result
        what = f"ordering '{comparison}' {'holds' if holds else 'does not hold'}"
        if protocol.measure == "identity":
            return row(
                text,
                IDENTITY if holds else NOT_REPRODUCED,
                f"{what}; true by construction of the method, so it checks the code, not the claim"
                if holds
                else f"{what}: an identity failed, which is a bug",
            )
        if comp.same:
            return row(text, REPRODUCED if holds else NOT_REPRODUCED, what)
        return row(text, _transfer(comp, holds), f"{differences}; {what}")
    factor = UNIT_SCALE.get((spec["unit"], claim["unit"]), 1.0)
    keys = [k for k in spec["keys"] if k in matched.columns]
    groups = matched.groupby(keys) if keys else [((), matched)]
    timing = "absolute time on another machine: " + (
        f"compare the ratio row {claim['ratio_row']}"
        if claim.get("ratio_row")
        else "the source gives no ratio"
    )
    if lost or (keys and groups.ngroups > 1):
        parts = [
            f"{_describe(g, spec['keys'])}: {factor * g['value'].mean():.4g}" for _, g in groups
        ]
        why = f"the source lost {', '.join(lost) or 'a selector'}; all matching values shown"
        if protocol.measure == "absolute_time":
            why = f"{timing}; {why}"
        return row("; ".join(parts), NOT_COMPARABLE, why)
    values = [factor * v for v in matched["value"]]
    mean = float(np.mean(values))
    lo, hi = bootstrap_ci(values)
    ours = f"{_fmt(mean, claim['unit'])} [{lo:.4g}, {hi:.4g}] (n={len(values)})"
    if protocol.measure == "absolute_time":
        return row(ours, NOT_COMPARABLE, timing)
    if claim["paper_value"] is None:
        return row(ours, NOT_COMPARABLE, "the source gives no number")
    verdict, reason = judge_number(claim, mean, lo, hi, len(values))
    if protocol.measure == "identity":
        if verdict == NOT_REPRODUCED:
            return row(ours, NOT_REPRODUCED, f"an identity failed, which is a bug: {reason}")
        return row(ours, IDENTITY, f"true by construction of the method; {reason}")
    if comp.same:
        return row(ours, verdict, reason)
    if protocol.measure in TRANSFERABLE_MEASURES:
        holds = verdict in (REPRODUCED, BETTER)
        return row(ours, _transfer(comp, holds), f"{differences}; {reason}")
    return row(ours, NOT_COMPARABLE, differences)


def _describe(group: pd.DataFrame, keys: list[str]) -> str:
    first = group.iloc[0]
    return ", ".join(f"{k}={first[k]}" for k in keys if k in group.columns)


def ledger(
    claims: list[dict],
    measured: pd.DataFrame,
    metrics: dict,
    scale: str,
    scale_note: str | dict,
    links: dict,
    runs: dict[str, RunProtocol] | None = None,
) -> pd.DataFrame:
    """All claims, the ones measured at this scale first, then by source."""
    rows = [evaluate(c, measured, metrics, scale, scale_note, links, runs) for c in claims]
    rows.sort(key=lambda r: (r.verdict == NOT_RUN, r.source))
    return pd.DataFrame([r.__dict__ for r in rows])


def _reason_kind(reason: str) -> str:
    """The kind of a not-comparable / not-run reason, for the summary's counts."""
    for prefix, kind in (
        ("stand-in data", "stand-in data"),
        ("not run on", "stand-in data"),
        ("reduced", "reduced model or size"),
        ("under-trained", "under-trained"),
        ("absolute time", "absolute time on another machine"),
        ("the source lost", "the source lost a selector or label"),
        ("the source gives no number", "the source gives no number"),
        ("ordering", "too few cases at this scale for an ordering"),
        ("no result for", "configuration not in this scale's plan"),
    ):
        if reason.startswith(prefix):
            return kind
    if "not in the" in reason or "not built" in reason:
        return "study not in this scale's plan"
    return reason.split(";")[0]


def summary(table: pd.DataFrame) -> dict:
    """The one-screen reproduction summary at the top of the report (ML Reproducibility
    Challenge form): how many claims fall in each category, which were judged on the
    paper's own data and budget, and the most common reasons the others were not."""
    counts = {v: int((table["verdict"] == v).sum()) for v in VERDICTS}
    real = table[table["verdict"].isin(REAL_VERDICTS)]

    def reasons(verdicts: tuple[str, ...]) -> list[tuple[str, int]]:
        rows = table[table["verdict"].isin(verdicts)]
        return list(rows["reason"].map(_reason_kind).value_counts().items())

    return {
        "counts": counts,
        "judged": len(real),
        "judged_ids": {v: real.loc[real["verdict"] == v, "id"].tolist() for v in REAL_VERDICTS},
        "stand_in": counts[HOLDS_STAND_IN] + counts[FAILS_STAND_IN],
        "reduced": counts[HOLDS_REDUCED] + counts[FAILS_REDUCED],
        "not_comparable_reasons": reasons((NOT_COMPARABLE,)),
        "not_run_reasons": reasons((NOT_RUN,)),
    }
