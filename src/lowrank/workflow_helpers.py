"""What the Snakefile and the jobs share about a run: its resolved params file, the settings
each step depends on (their hashes are rerun triggers, stamp files and provenance), the
per-study input helpers of the rules, and the report's freshness check.

Kept free of torch so `snakemake -n` stays fast.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from lowrank.atomic import write_text
from lowrank.config import params_hash
from lowrank.errors import UserError
from lowrank.studies import configs as model_configs
from lowrank.studies import job_names as model_job_names  # noqa: F401 (used by the rules)
from lowrank.train.tucker_keys import DENSE_KEYS, POSTHOC_KEYS, TRAINED_KEYS

# Study -> the report's category name (Snakemake report and figure captions).
STUDY_TITLES = {
    "lorita_fcn": "LoRITa FCN (seed 004)",
    "lorita_cnn": "LoRITa CNN (seed 004)",
    "lorita_vit": "LoRITa ViT (seed 004)",
    "structured": "LoRITa vs structured pruning (seed 004)",
    "rankconv": "Rank-constrained convolution (seed 000)",
    "toeplitz": "Toeplitz convolution (seed 001)",
    "tucker": "Tucker decomposition (seeds 002/003)",
}

# Keys of each study's block that only the report (or a later step) reads.
FCN_SWEEP_KEYS = ("retained_fractions", "truncate_head", "gsvt_max_gap")
FCN_REPORT_KEYS = ("drop_tolerance", "converged_by")
MODEL_SWEEP_KEYS = {
    "lorita_cnn": ("retained_fractions",),
    "lorita_vit": ("retained_fractions",),
    "structured": (
        "retained_fractions",
        "tolerance",
        "finetune_steps",
        "finetune_lr",
        "speed_batch",
        "speed_repeats",
    ),
}
RANKCONV_REPORT_KEYS = ("target_acc", "early_iteration")
TOEPLITZ_TRAIN_KEYS = (
    "dataset",
    "seeds",
    "channels",
    "hidden",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "train_subset",
)


def _without(cfg: dict, keys: Iterable[str]) -> dict:
    skip = set(keys)
    return {k: v for k, v in cfg.items() if k not in skip}


def _only(cfg: dict, keys: Iterable[str]) -> dict:
    return {k: cfg[k] for k in keys}


# The keys only the report reads, per study (every other key reruns an earlier step, and the
# report after it).
REPORT_ONLY_KEYS = {
    "lorita_fcn": FCN_REPORT_KEYS,
    "lorita_cnn": ("drop_tolerance",),
    "lorita_vit": ("drop_tolerance",),
    "rankconv": RANKCONV_REPORT_KEYS,
}


def step_settings(study: str, step: str, block: dict, params: dict) -> Any:
    """The settings one step of a study depends on (its rerun trigger); study `report` (step
    `report`) is the report's own: the report-only keys of every study of the scale."""
    if study == "report":
        return {
            name: {k: block[name][k] for k in keys if k in block[name]}
            for name, keys in REPORT_ONLY_KEYS.items()
            if name in block
        }
    cfg = block[study]
    if study == "lorita_fcn":
        return {
            "train": lambda: _without(cfg, FCN_SWEEP_KEYS + FCN_REPORT_KEYS),
            "sweep": lambda: _only(cfg, FCN_SWEEP_KEYS),
            "flops": lambda: [cfg[k] for k in ("depths", "factors", "width")],
        }[step]()
    if study in MODEL_SWEEP_KEYS:
        sweep = MODEL_SWEEP_KEYS[study]
        return {
            "train": lambda: _without(cfg, sweep + ("drop_tolerance",)),
            "sweep": lambda: _only(cfg, sweep),
        }[step]()
    if study == "rankconv":
        return {
            "train": lambda: [_without(cfg, RANKCONV_REPORT_KEYS), params["device"]],
            "strategy": lambda: [
                _without(cfg, RANKCONV_REPORT_KEYS + ("seeds",)),
                params["device"],
            ],
        }[step]()
    if study == "toeplitz":
        return {
            "train": lambda: _only(cfg, TOEPLITZ_TRAIN_KEYS),
            "eval": lambda: _without(cfg, TOEPLITZ_TRAIN_KEYS),
        }[step]()
    if study == "tucker":
        return {
            "dense": lambda: _only(cfg, DENSE_KEYS + ("seeds",)),
            "posthoc": lambda: _only(cfg, POSTHOC_KEYS),
            "trained": lambda: _only(cfg, TRAINED_KEYS),
            "pareto": lambda: _only(cfg, ("networks",)),
        }[step]()
    raise KeyError(f"{study}.{step}")


# The steps of each study, in order (`study.step` names its stamp, provenance and --step).
STUDY_STEPS = {
    "lorita_fcn": ("train", "sweep", "flops"),
    "lorita_cnn": ("train", "sweep"),
    "lorita_vit": ("train", "sweep"),
    "structured": ("train", "sweep"),
    "rankconv": ("strategy", "train"),
    "toeplitz": ("train", "eval"),
    "tucker": ("dense", "posthoc", "trained", "pareto"),
}


def run_steps(block: dict) -> list[str]:
    """Every `study.step` of the scale's studies, then the report's own `report.report`."""
    steps = [f"{s}.{t}" for s, names in STUDY_STEPS.items() if s in block for t in names]
    return [*steps, "report.report"]


def step_hash(study: str, step: str, block: dict, params: dict) -> str:
    return params_hash(step_settings(study, step, block, params))


def parse_step(name: str) -> tuple[str, str]:
    study, _, step = name.partition(".")
    return study, step


# --- files the Snakefile writes at parse time ------------------------------------------------


def write_if_changed(path: str | os.PathLike, text: str, new_mtime: float | None = None) -> bool:
    """Write `text` atomically unless the file already holds it; True when written.

    `new_mtime` dates a file that did not exist yet (e.g. 0 for a stamp, so creating one never
    makes existing results look out of date; a later change is dated now).
    """
    path = Path(path)
    existed = path.is_file()
    if existed and path.read_text(encoding="utf-8") == text:
        return False
    write_text(path, text)
    if not existed and new_mtime is not None:
        os.utime(path, (new_mtime, new_mtime))
    return True


def resolved_text(config: dict) -> str:
    header = (
        "# The merged, validated settings of this run (params.yaml + --configfile + --config),\n"
        "# written by the Snakefile; every job reads it with --params. Do not edit.\n"
    )
    return header + yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=False)


def write_resolved(config: dict, results: str | os.PathLike) -> tuple[Path, str]:
    """results/<scale>/params.resolved.yaml (the latest run's settings) and the immutable
    copy the jobs read, results/<scale>/params.resolved/<hash>.yaml: a second invocation
    with other overrides rewrites the first file but never a file a running job may read."""
    digest = params_hash(config)
    text = resolved_text(config)
    frozen = Path(results) / "params.resolved" / f"{digest}.yaml"
    write_if_changed(frozen, text)
    write_if_changed(Path(results) / "params.resolved.yaml", text)
    return frozen, digest


def write_stamps(block: dict, params: dict, steps: Iterable[str], folder) -> dict[str, str]:
    """One stamp file per step, holding its settings hash; rewritten only when that changes,
    so a changed value makes the stamp newer than the step's outputs whatever Snakemake's
    metadata says (a deleted .snakemake/, copied results). Returns step -> stamp path."""
    paths = {}
    for name in steps:
        study, step = parse_step(name)
        path = Path(folder) / f"{name}.hash"
        write_if_changed(path, step_hash(study, step, block, params) + "\n", new_mtime=0)
        paths[name] = str(path)
    return paths


def not_a_trigger(value: Any) -> Callable:
    """A `params:` value Snakemake records but never compares: it skips params derived from a
    job's files (a function taking `input`). For the resolved params file, whose name changes
    with every override: as a plain param it would rerun every job on any change; the rerun
    triggers are each step's `settings` hash and stamp."""

    def derived(wildcards, input):
        return value

    return derived


def lowrank_command(root: str | os.PathLike, python: str) -> str:
    """The shell prefix that runs the package from src/, every path quoted."""
    src = shlex.quote(str(Path(root) / "src"))
    return f"PYTHONPATH={src}${{PYTHONPATH:+:$PYTHONPATH}} {shlex.quote(python)} -m lowrank.cli"


def option(flag: str, paths: list[str]) -> str:
    """`flag PATH` (quoted) for a one-path list, nothing for an empty one."""
    return f"{flag} {shlex.quote(paths[0])}" if paths else ""


# --- input helpers of the rules ---------------------------------------------------------------


def fetch_output(rules: Any, dataset: str) -> Any:
    """The output of the fetch rule of `dataset` (mnist32 -> fetch_mnist, cifar10_gray ->
    fetch_cifar10); none where no such rule is included (load_images then names the gap)."""
    base = "mnist" if dataset.startswith("mnist") else dataset.removesuffix("_gray")
    try:
        return getattr(rules, f"fetch_{base}").output
    except Exception:  # Snakemake raises its own error type for an unknown rule
        return []


def model_study_data(study: str, block: dict, data_dir: str, rules: Any) -> Callable:
    """Input function: the fetch rule of the dataset a configuration will really use.

    With a fallback (quick), CIFAR is used when its verified manifest is in data_dir and the
    fallback's fetch rule runs otherwise (lowrank.data.images.resolve_dataset decides again,
    strictly, when the job runs); without one (paper) the dataset's own fetch rule runs.
    """

    def data(wildcards):
        config = model_configs(study, block)[wildcards.config]
        name = config.dataset
        if config.fallback and not Path(data_dir, name, "MANIFEST.json").is_file():
            name = config.fallback
        return fetch_output(rules, name)

    return data


def config_pattern(study: str, block: dict) -> str:
    """Wildcard constraint: exactly the study's configuration ids."""
    return "|".join(re.escape(c) for c in model_configs(study, block)) or "^$"


def rankconv_configs(cfg: dict) -> list[str]:
    out = []
    for entry in cfg["grid"]:
        k = entry["kernel"]
        ranks = [*range(1, k + 1), "dense"] if entry["ranks"] == "all" else entry["ranks"]
        out += [
            f"k{k}_{'dense' if r == 'dense' else f'r{r}'}_{v}"
            for r in ranks
            for v in cfg["variants"]
        ]
    return out


def parent(output: Any) -> str:
    """A rule's output folder, for `params:` (lint: derive it from the output)."""
    return str(Path(output[0]).parent)


# --- the Snakemake report ---------------------------------------------------------------------

# Figure file name (reports/<scale>/figures/) -> study.
FIGURES = {
    "lorita_fcn": ("fcn_truncation_curves", "fcn_spectra"),
    "lorita_cnn": ("lorita_cnn_truncation_curves",),
    "lorita_vit": ("lorita_vit_truncation_curves",),
    "structured": ("structured_speedup",),
    "rankconv": (
        "rankconv_accuracy_vs_rank",
        "rankconv_curves",
        "rankconv_generalization_gap",
        "rankconv_train_time",
        "rankconv_test_time",
    ),
    "toeplitz": ("toeplitz_rank_curves",),
    "tucker": ("tucker_accuracy_vs_macs", "tucker_convergence"),
}


def report_figures(report: Callable, study: str, scale: str) -> list:
    """The study's figures as report-flagged outputs (Snakemake's `report` passed in), each
    with its caption (workflow/report/<figure>.rst, else <study>.rst) and the study's category.
    """
    captions = Path(__file__).resolve().parents[2] / "workflow" / "report"
    out = []
    for name in FIGURES[study]:
        caption = name if (captions / f"{name}.rst").is_file() else study
        out.append(
            report(
                f"reports/{scale}/figures/{name}.png",
                caption=f"../report/{caption}.rst",
                category=STUDY_TITLES[study],
            )
        )
    return out


def table_study(name: str) -> str | None:
    """The study a report table belongs to, by its file name (None: the whole study)."""
    for study in STUDY_TITLES:
        if name.startswith(study):
            return study
    if "fcn" in name:
        return "lorita_fcn"
    return None


def table_category(wildcards: Any) -> str:
    study = table_study(wildcards.name)
    return STUDY_TITLES[study] if study else "Claims ledger and summary"


# --- freshness: the report never mixes settings ----------------------------------------------


def _provenance(path: Path) -> dict | None:
    """The provenance record of a result file (in a JSON result, or a CSV's sidecar)."""
    if path.suffix == ".csv":
        sidecar = path.with_name(path.name + ".provenance.json")
        path = sidecar
        if not path.is_file():
            return None
    elif path.suffix != ".json":
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and "provenance" in data:
        data = data["provenance"]
    return data if isinstance(data, dict) and "step" in data else None


def check_fresh(files: Iterable[str | os.PathLike], params: dict, block: dict) -> int:
    """Refuse (UserError, one line naming the file) a result made with settings other than
    the current ones of its step; results without a recorded step are not checked.
    Returns how many results were checked."""
    checked = 0
    for name in files:
        path = Path(name)
        record = _provenance(path)
        if not record or not record.get("step_hash"):
            continue
        study, step = parse_step(record["step"])
        if study not in block:
            continue
        now = step_hash(study, step, block, params)
        if record["step_hash"] != now:
            raise UserError(
                f"{path}: made with other {study} {step} settings (hash {record['step_hash']},"
                f" now {now}); rerun that step (snakemake --forcerun <rule>) or remove the file"
            )
        checked += 1
    return checked
