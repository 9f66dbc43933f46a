"""LSVT and GSVT sweeps of trained LoRITa FCNs over a grid of retained fractions.

Each point records test accuracy, its drop from the uncompressed model, and the parameters
and FLOPs (ptflops) of the real compressed model. The singular-value spectra of every layer
are saved too (the paper's Figure 3).

Two choices the paper leaves open are swept, not fixed:
- the classifier head (the last Linear, 500 -> 10): truncated like every other matrix (the
  paper's "each trainable weight matrix", `head = truncated`) or kept at full rank
  (`head = kept`, then it is left out of the retained-share average as well);
- where GSVT's points land. GSVT's target is a share of the pooled singular values, but the
  paper's axis is the per-matrix share averaged over matrices, on which small layers weigh as
  much as large ones; a grid on the pooled share can jump many points on the paper's axis
  exactly where accuracy falls. With `gsvt_max_gap` set, the sweep bisects the target between
  neighbouring points whose realized shares are further apart than that while their accuracy
  drops differ by more than the drop tolerance, until the gap closes or one more bisection
  changes no rank (a single layer's rank jumps there; the rows say which).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from lowrank.atomic import read_json, write_json
from lowrank.data.mnist import load_mnist
from lowrank.errors import UserError
from lowrank.measure.flops import analytic_fcn, ptflops_count
from lowrank.methods.lorita import collapse
from lowrank.methods.truncation import (
    LayerSVD,
    gsvt_ranks,
    layer_svds,
    lsvt_ranks,
    pooled_fraction,
    retained_fraction,
    truncate,
)
from lowrank.provenance import stamp, write_csv_with_provenance
from lowrank.train.loop import accuracy
from lowrank.train.lorita_fcn import load_trained

RANKERS = {"LSVT": lsvt_ranks, "GSVT": gsvt_ranks}
INPUT_SHAPE = (1, 28, 28)
MAX_REFINEMENTS = 24  # extra GSVT points per curve at most
MIN_TARGET_STEP = 1e-4  # stop bisecting below this step of the pooled target


def refine_targets(
    points: dict[float, dict],
    ranks_at: Callable[[float], str],
    evaluate: Callable[[float], dict],
    max_gap: float,
    tolerance: float,
) -> None:
    """Add GSVT targets (in place) between neighbours whose realized shares are more than
    `max_gap` apart while their accuracy drops differ by more than `tolerance`.

    Between two such points the target is bisected on the (cheap) ranks alone until it
    yields a model that is neither neighbour; only that one is evaluated. When no such
    target exists the two models are adjacent (one rank step of one layer) and the pair is
    left as it is."""
    closed: set[tuple[float, float]] = set()
    for _ in range(MAX_REFINEMENTS):
        ordered = sorted(points.items())
        todo = next(
            (
                (ta, tb)
                for (ta, a), (tb, b) in zip(ordered, ordered[1:], strict=False)
                if (ta, tb) not in closed
                and b["retained_fraction"] - a["retained_fraction"] > max_gap + 1e-12
                and abs(b["acc_drop"] - a["acc_drop"]) > tolerance
            ),
            None,
        )
        if todo is None:
            return
        ta, tb = todo
        lo, hi = ta, tb
        found = None
        while hi - lo > MIN_TARGET_STEP:
            mid = (lo + hi) / 2
            ranks = ranks_at(mid)
            if ranks == points[ta]["ranks"]:
                lo = mid
            elif ranks == points[tb]["ranks"]:
                hi = mid
            else:
                found = mid
                break
        if found is None:
            closed.add(todo)
            continue
        point = evaluate(found)
        point["refined"] = True
        points[found] = point


def sweep_curve(
    dense,
    svds: list[LayerSVD],
    method: str,
    fractions: list[float],
    test_xy,
    base_acc: float,
    max_gap: float | None,
    tolerance: float,
    count: Callable | None = None,
) -> list[dict]:
    """Every point of one truncation curve of one model. `count(model, ranks)` gives (MACs,
    parameters) of a truncated model (default: ptflops on the realized model)."""
    ranker = RANKERS[method]
    count = count or (lambda model, _ranks: ptflops_count(model, INPUT_SHAPE))

    def ranks_at(fraction: float) -> str:
        ranks = ranker(svds, fraction)
        return "-".join(str(ranks[d.name]) for d in svds)

    def evaluate(fraction: float) -> dict:
        ranks = ranker(svds, fraction)
        model = truncate(dense, svds, ranks)
        acc = accuracy(model, *test_xy)
        macs, params = count(model, ranks)
        return {
            "target_fraction": fraction,
            "retained_fraction": retained_fraction(svds, ranks),
            "pooled_fraction": pooled_fraction(svds, ranks),
            "ranks": "-".join(str(ranks[d.name]) for d in svds),
            "head_rank": ranks[svds[-1].name],
            "test_acc": acc,
            "acc_drop": base_acc - acc,
            "macs": macs,
            "params": params,
            "refined": False,
        }

    points = {f: evaluate(f) for f in fractions}
    if method == "GSVT" and max_gap:
        refine_targets(points, ranks_at, evaluate, max_gap, tolerance)
    return [p for _, p in sorted(points.items())]


def checked_count(
    depth: int, width: int, every: list[LayerSVD], batchnorm: bool = False
) -> Callable:
    """(MACs, parameters) of a truncated FCN from its ranks (measure/flops.analytic_fcn),
    checked against ptflops on the realized model at every 8th point: the analytic count
    is what ptflops measures (tests/test_flops.py), at a fraction of its cost."""
    calls = {"n": 0}

    def count(model, ranks: dict[str, int]) -> tuple[int, int]:
        analytic = analytic_fcn(
            depth, width, [ranks.get(d.name) for d in every], batchnorm=batchnorm
        )
        if calls["n"] % 8 == 0:
            measured = ptflops_count(model, INPUT_SHAPE)
            if measured != analytic:
                raise UserError(
                    f"FCN-{depth}: ptflops counts {measured} (MACs, params) for ranks "
                    f"{ranks}, the analytic count {analytic}"
                )
        calls["n"] += 1
        return analytic

    return count


def sweep_config(train_dir: Path, fractions: list[float], data_dir: str, block: dict) -> None:
    """Write train_dir/sweep.csv and train_dir/spectra.json for the selected weight decay."""
    t0 = time.perf_counter()
    cfg = block["lorita_fcn"]
    heads = cfg.get("truncate_head", [True])
    max_gap = cfg.get("gsvt_max_gap")
    summary = read_json(train_dir / "summary.json")
    splits = load_mnist(data_dir)
    test_xy = (splits.test_x, splits.test_y)
    rows, spectra = [], {}
    seeds = sorted({r["seed"] for r in summary["runs"]})
    for seed in seeds:
        dense = collapse(load_trained(train_dir, summary, seed))
        base_acc = accuracy(dense, *test_xy)
        base_macs, base_params = ptflops_count(dense, INPUT_SHAPE)
        every = layer_svds(dense)
        spectra[str(seed)] = {d.name: d.s.tolist() for d in every}
        count = checked_count(
            summary["depth"], summary["width"], every, summary.get("batchnorm", True)
        )
        for head_truncated in heads:
            svds = every if head_truncated else every[:-1]
            for method in RANKERS:
                curve = sweep_curve(
                    dense,
                    svds,
                    method,
                    fractions,
                    test_xy,
                    base_acc,
                    max_gap,
                    cfg["drop_tolerance"],
                    count,
                )
                for point in curve:
                    if not head_truncated:
                        point["head_rank"] = every[-1].full_rank
                    rows.append(
                        {
                            "depth": summary["depth"],
                            "n_factors": summary["n_factors"],
                            "seed": seed,
                            "weight_decay": summary["selected_weight_decay"],
                            "head": "truncated" if head_truncated else "kept",
                            "method": method,
                            **point,
                            "base_test_acc": base_acc,
                            "base_macs": base_macs,
                            "base_params": base_params,
                        }
                    )
    record = stamp(cfg, seeds, splits.checksum, time.perf_counter() - t0)
    write_csv_with_provenance(pd.DataFrame(rows), train_dir / "sweep.csv", record)
    spectra_record = {
        "depth": summary["depth"],
        "n_factors": summary["n_factors"],
        "spectra": spectra,
        "provenance": record,
    }
    write_json(train_dir / "spectra.json", spectra_record)
