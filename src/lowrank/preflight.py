"""Checks of a run's settings before any job starts: paths, threads, device, memory.

The schema checks each value on its own; these check the values against this machine and
the workflow (is data_dir a directory, may threads exceed the cores, is there a GPU, does
each training job fit its rule's memory). The Snakefile calls `plan_checks` at plan time
and `lowrank validate` runs the same function, so both accept exactly the same settings.
Every failure is one UserError line naming the file and the key. No torch import unless
`device: cuda` asks for a GPU on a machine that has NVIDIA device files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lowrank.config import find_schema, origin_finder, read_yaml, validate
from lowrank.errors import UserError

Where = Callable[[Sequence[str | int]], str]
STUDY_THREADS = ("lorita_fcn", "rankconv", "toeplitz", "lorita_cnn", "lorita_vit", "structured")


def blocker(path: Path) -> str | None:
    """Why `path` cannot be made a directory we can write in, or None if it can."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a directory"
    try:  # access() says yes to root everywhere, so try it (and leave nothing behind)
        Path(tempfile.mkdtemp(prefix=".lowrank-probe-", dir=probe)).rmdir()
    except OSError as exc:
        return f"{probe} is not writable ({exc.strerror or exc.__class__.__name__})"
    return None


def check_paths(params: Mapping, root: Path, where: Where, logs: str = "logs") -> None:
    """data_dir is a directory (may be read-only: pre-populated) or can be created;
    results_dir and the log folder are writable or can be created."""
    data = root / params["data_dir"]
    if not data.is_dir():
        reason = blocker(data)
        if reason:
            raise UserError(
                f"{where(['data_dir'])}: params: key 'data_dir': {params['data_dir']} cannot be "
                f"used as the data directory: {reason}; set data_dir to a directory"
            )
    reason = blocker(root / params["results_dir"])
    if reason:
        raise UserError(
            f"{where(['results_dir'])}: params: key 'results_dir': {params['results_dir']} is "
            f"not writable: {reason}; choose a directory you can write to"
        )
    reason = blocker(root / logs)
    if reason:
        raise UserError(
            f"{root / logs}: the workflow's log folder is not writable: {reason}; make it a "
            f"writable directory"
        )


def gpu_visible() -> bool:
    """Whether this machine shows a CUDA GPU; no torch import when there are no device files."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if not (Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").is_dir()):
        return False
    import torch

    return bool(torch.cuda.is_available())


def check_device(
    params: Mapping, cluster: bool, where: Where, gpu: Callable[[], bool] = gpu_visible
) -> None:
    """`device: cuda` on a local run needs a GPU here; a cluster submission is the nodes' matter."""
    if params.get("device") == "cuda" and not cluster and not gpu():
        raise UserError(
            f"{where(['device'])}: params: key 'device': cuda, but no GPU is visible on this "
            f"machine (a local run); use device: auto or cpu, or submit to a GPU cluster"
        )


def check_threads(
    params: Mapping, scale: str, cluster: bool, where: Where, cores: int | None = None
) -> None:
    """No thread count above this machine's cores on a local run (the schema caps at 1024)."""
    if cluster:
        return
    cores = cores or os.cpu_count() or 1
    block = params["scales"][scale]
    keys = [("threads",)]
    keys += [("scales", scale, s, "threads") for s in STUDY_THREADS if s in block]
    if "toeplitz" in block:
        keys.append(("scales", scale, "toeplitz", "bench", "threads"))
    for key in keys:
        value: object = params
        for part in key:
            value = value[part]  # type: ignore[index]
        if isinstance(value, int) and value > cores:
            name = ".".join(key)
            raise UserError(
                f"{where(list(key))}: params: key '{name}': {value} threads, but this machine "
                f"has {cores} CPU cores (a local run); use at most {cores}"
            )


def check_memory(params: Mapping, scale: str, where: Where) -> None:
    """Every training job of the scale fits its rule's `mem_mb` (lowrank.memory's estimate)."""
    from lowrank.memory import describe, over_budget

    device = params.get("device", "auto")
    worst = over_budget(params["scales"][scale], device)
    if worst is not None:
        key = ["scales", scale, worst.study]
        raise UserError(
            f"{where(key)}: params: key '{'.'.join(key)}': {describe(worst, device)}; reduce "
            f"width, depth, factors or batch_size (or train on a GPU: device: cuda)"
        )


LOCAL_EXECUTORS = ("local", "dryrun", "touch")


def cluster_submission(
    argv: Sequence[str], environ: Mapping[str, str], root: str | Path = "."
) -> bool:
    """Whether a Snakemake command line submits to a cluster (`--executor`/`-e`, or a
    `--profile` / $SNAKEMAKE_PROFILE whose config.yaml names a non-local executor).

    The Snakefile cannot ask Snakemake: its executor is chosen after the Snakefile is read,
    so `workflow.local_exec` is always true at plan time."""
    args = list(argv)
    executor = profile = None
    for i, arg in enumerate(args):
        for flag, name in (("--executor", "executor"), ("-e", "executor"), ("--profile", "p")):
            value = None
            if arg == flag and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(flag + "=") and flag.startswith("--"):
                value = arg.split("=", 1)[1]
            if value is not None:
                executor, profile = (value, profile) if name == "executor" else (executor, value)
    profile = profile or environ.get("SNAKEMAKE_PROFILE")
    if executor is None and profile:
        folder = Path(profile) if Path(profile).is_absolute() else Path(root) / profile
        config = folder / "config.yaml"
        if not config.is_file():  # a profile by name from ~/.config/snakemake
            config = Path(environ.get("HOME", "~")).expanduser() / ".config/snakemake"
            config = config / profile / "config.yaml"
        try:
            executor = (read_yaml(config) or {}).get("executor") if config.is_file() else None
        except UserError:
            executor = None
    return executor is not None and str(executor) not in LOCAL_EXECUTORS


def plan_checks(
    params: Mapping,
    root: str | Path,
    configfiles: Sequence[str | Path] = (),
    overrides: Mapping | None = None,
    cluster: bool = False,
    base: str | Path = "params.yaml",
) -> None:
    """Everything checked before any job: the schema (naming the file each bad value came
    from: params.yaml, a --configfile or --config), paths, threads, device and memory.

    `params` is the merged config (Snakemake's `config`); `configfiles` and `overrides` are
    the command line's `--configfile` files and `--config` values; `cluster` is true for a
    submission to a cluster executor (its nodes' cores and GPUs are not this machine's)."""
    root = Path(root)
    base_path = root / base
    where = origin_finder(base, [Path(f) for f in configfiles], overrides or {})
    validate(dict(params), read_yaml(find_schema(base_path)), where)
    scale = params["scale"]
    check_paths(params, root, where)
    check_threads(params, scale, cluster, where)
    check_device(params, cluster, where)
    check_memory(params, scale, where)
