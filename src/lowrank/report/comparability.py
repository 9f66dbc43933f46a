"""Like with like: the protocol a claim was made under against the protocol a run followed.

A claim's number is only reproduced or not by a run on the claim's dataset and model, trained
to the claim's budget. Everything else is said as what it is: an ordering that holds (or
fails) on stand-in data, a number that is not comparable and why, a timing from another
machine that only its ratio row can judge, or an identity that holds by construction.

Claims declare their protocol in claims.yaml (`protocol: {dataset, model, budget, measure}`);
each study's report section declares what its runs did (`RunProtocol`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MEASURES = ("accuracy", "ratio", "absolute_time", "ordering", "count", "identity")
DATASET_LABELS = {
    "mnist": "MNIST",
    "mnist32": "MNIST zero-padded to 32x32",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "cifar10_gray": "grayscale CIFAR-10",
}
# Measures whose direction (not value) a stand-in run can still test.
TRANSFERABLE = ("ordering", "ratio")


def dataset_label(name: str | None) -> str:
    return DATASET_LABELS.get(name or "", name or "unknown data")


@dataclass(frozen=True)
class ClaimProtocol:
    """What the source measured: dataset and model (None: independent of data / model),
    budget ("converged", {"epochs": n}, {"iterations": n} or None: needs no training) and
    the kind of measure."""

    dataset: str | None
    model: str | None
    budget: str | dict | None
    measure: str

    @classmethod
    def parse(cls, record: dict, where: str) -> ClaimProtocol:
        from lowrank.errors import UserError

        proto = record.get("protocol")
        if not isinstance(proto, dict):
            raise UserError(f"{where}: claim {record.get('id', '?')} lacks its protocol block")
        missing = {"dataset", "model", "budget", "measure"} - set(proto)
        if missing:
            raise UserError(f"{where}: claim {record['id']}: protocol lacks {sorted(missing)}")
        if proto["measure"] not in MEASURES:
            raise UserError(
                f"{where}: claim {record['id']}: protocol.measure '{proto['measure']}' is not "
                f"one of {list(MEASURES)}"
            )
        budget = proto["budget"]
        ok_budget = (
            budget is None
            or budget == "converged"
            or (
                isinstance(budget, dict)
                and len(budget) == 1
                and next(iter(budget)) in ("epochs", "iterations")
                and isinstance(next(iter(budget.values())), int)
            )
        )
        if not ok_budget:
            raise UserError(
                f"{where}: claim {record['id']}: protocol.budget must be converged, "
                f"{{epochs: n}}, {{iterations: n}} or null, not {budget!r}"
            )
        return cls(proto["dataset"], proto["model"], budget, proto["measure"])


@dataclass(frozen=True)
class RunProtocol:
    """What a study's runs did at this scale."""

    datasets: dict[str, str]  # the source's dataset -> the dataset the run used for it
    full_size: bool  # models at the source's (or, where it lost them, our chosen) size
    size_note: str = ""  # e.g. "channels x1/16"
    epochs: int | None = None
    iterations: int | None = None
    converged_by: str | None = None  # how the budget was shown to converge, else None
    seeds: int = 1
    # models of the study run below the source's size although the study's main model is not
    # (e.g. the Toeplitz study's Figure 2 micro-benchmark sizes): model name -> how
    reduced_models: dict[str, str] = field(default_factory=dict)
    # runs of this study that did not converge although `converged_by` says the rest did,
    # as claim selectors (e.g. {"depth": 6, "n_factors": 2}): a claim whose selector does
    # not rule them out (no conflicting value) is judged under-trained
    unconverged: tuple[dict, ...] = ()


def _touches(selector: dict | None, subset: dict) -> bool:
    """Whether a claim with `selector` may read the runs `subset` names: no key of the subset
    takes another value in the selector (a claim over every N reads the N = 2 runs too)."""
    selector = selector or {}
    return all(selector.get(k, v) == v for k, v in subset.items())


@dataclass(frozen=True)
class Comparability:
    """Why a claim and a run can (empty `differences`) or cannot be compared as equals."""

    differences: tuple[str, ...]
    stand_in_data: bool

    @property
    def same(self) -> bool:
        return not self.differences


def compare(
    claim: ClaimProtocol, run: RunProtocol | None, selector: dict | None = None
) -> Comparability:
    """Every way the run departs from the claim's protocol, in words (`selector`: the claim's
    selector, which decides whether unconverged runs are among those it reads)."""
    if run is None:
        return Comparability(("this study declares no run protocol",), False)
    out: list[str] = []
    stand_in = False
    if claim.dataset is not None:
        used = run.datasets.get(claim.dataset)
        if used != claim.dataset:
            stand_in = True
            out.append(
                f"stand-in data: {dataset_label(used)} for {dataset_label(claim.dataset)}"
                if used
                else f"not run on {dataset_label(claim.dataset)}"
            )
    if claim.model is not None and not run.full_size:
        out.append(f"reduced model: {run.size_note or 'narrowed'}")
    elif claim.model in run.reduced_models:
        out.append(f"reduced size: {run.reduced_models[claim.model]}")
    budget = claim.budget
    unconverged = [s for s in run.unconverged if _touches(selector, s)]
    if budget == "converged" and (not run.converged_by or unconverged):
        ran = f"{run.epochs} epoch(s)" if run.epochs else f"{run.iterations} iteration(s)"
        which = (
            " (" + "; ".join(", ".join(f"{k} {v}" for k, v in s.items()) for s in unconverged) + ")"
            if run.converged_by
            else ""
        )
        out.append(f"under-trained: {ran}, not trained to convergence{which}")
    elif isinstance(budget, dict):
        ((unit, wanted),) = budget.items()
        ran = run.epochs if unit == "epochs" else run.iterations
        if ran is None or ran < wanted:
            out.append(f"under-trained: {ran} of {wanted} {unit}")
    return Comparability(tuple(out), stand_in)
