"""Provenance stamped on every result file: code version, params, software, device, time."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

import torch

from lowrank.config import params_hash

# The step a job runs (its `--step`), that step's settings hash and the hash of the resolved
# params file it read: set once per job by the CLI, stamped on every result it writes, so the
# report can refuse results made with other settings (lowrank.workflow_helpers.check_fresh).
RUN: dict = {}

PACKAGES = ("torch", "numpy", "ptflops", "pandas", "seaborn", "snakemake", "dvc", "tensorly")


def git_commit(root: str | Path = ".") -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        commit = out.stdout.strip() if out.returncode == 0 else "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return commit + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    found["python"] = platform.python_version()
    return found


def device() -> str:
    cpu = platform.processor() or platform.machine()
    return f"cpu ({cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def stamp(block: dict, seeds: list[int], dataset_checksum: str, wall_seconds: float) -> dict:
    """The provenance record written beside a result."""
    return {
        "git_commit": git_commit(),
        "params_hash": params_hash(block),
        "versions": versions(),
        "device": device(),
        "seeds": list(seeds),
        "dataset_checksum": dataset_checksum,
        "wall_seconds": round(wall_seconds, 2),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **RUN,
    }


def set_run(params: dict, block: dict, step: str | None) -> None:
    """Record the job's resolved params hash and, given `study.step`, its settings hash."""
    RUN.clear()
    RUN["run_params_hash"] = params_hash(params)
    if step:
        from lowrank.workflow_helpers import parse_step, step_hash

        study, name = parse_step(step)
        RUN["step"] = step
        RUN["step_hash"] = step_hash(study, name, block, params)


def write_csv_with_provenance(frame, path: Path, record: dict) -> None:
    """A results CSV and, beside it, `<name>.provenance.json` (CSV has no place for it)."""
    from lowrank.atomic import write_json, write_with

    path = Path(path)
    write_with(path, lambda p: frame.to_csv(p, index=False))
    write_json(path.with_name(path.name + ".provenance.json"), record)
