"""Bad input and file-system faults end in one line naming the file or key (issue 19).

Every case runs the CLI in-process or calls the plan-time checks directly, so the whole
file takes seconds: no training, no workflow run.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lowrank import cli
from lowrank.config import job_args, load_params, origin_finder, read_yaml
from lowrank.errors import UserError, describe
from lowrank.memory import TRAIN_MEM_MB, estimates
from lowrank.preflight import (
    check_device,
    check_paths,
    check_threads,
    cluster_submission,
    plan_checks,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """In-process CLI calls set torch's thread count; put it back for the next test."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    yield
    if torch is not None and before is not None:
        torch.set_num_threads(before)


def project(tmp_path: Path, mutate=None) -> Path:
    """A copy of params.yaml and its schema in tmp_path; data in the repo's data/."""
    (tmp_path / "workflow/schemas").mkdir(parents=True)
    shutil.copy(REPO / "workflow/schemas/params.schema.yaml", tmp_path / "workflow/schemas")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(data_dir=str(REPO / "data"), results_dir=str(tmp_path / "results"))
    if mutate:
        mutate(params)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path / "params.yaml"


def one_line(capsys, argv: list[str], status: int = 2) -> str:
    """Run `lowrank argv` in-process; it must end with `status` and one stderr line."""
    assert cli.main(argv) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def smoke(path: Path) -> list[str]:
    return ["--params", str(path), "--scale", "smoke"]


def fcn(p: dict, **values) -> None:
    p["scales"]["smoke"]["lorita_fcn"].update(values)


# Settings: each is refused by `lowrank validate` with one line naming the key (and bound).
@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda p: fcn(p, width=10**9), ["lorita_fcn.width", "maximum of 65536"]),
        (lambda p: fcn(p, depths=[6.0]), ["lorita_fcn.depths.0", "6.0 is not of type 'integer'"]),
        (lambda p: fcn(p, width=64.0), ["lorita_fcn.width", "not of type 'integer'"]),
        (lambda p: fcn(p, batch_size=10**8), ["lorita_fcn.batch_size", "maximum"]),
        (lambda p: fcn(p, seeds=[2**40]), ["lorita_fcn.seeds.0", "maximum"]),
        (lambda p: fcn(p, factors=[1, 100]), ["lorita_fcn.factors.1", "maximum of 16"]),
        (lambda p: fcn(p, train_subset=10**9), ["train_subset", "maximum"]),
        (lambda p: p["scales"]["smoke"]["rankconv"].update(iterations=10**12), ["iterations"]),
        (lambda p: p["scales"]["smoke"]["lorita_vit"].update(dim=10**6), ["lorita_vit.dim"]),
        (lambda p: p.update(threads=10**6), ["'threads'", "maximum of 1024"]),
        (lambda p: fcn(p, threads=3), ["lorita_fcn.threads", "CPU cores"]),
        (lambda p: fcn(p, width=20000), ["scales.smoke.lorita_fcn", "would need about", "MB"]),
        (
            lambda p: p["scales"]["smoke"]["toeplitz"]["bench"]["microbench"].update(
                matmul=[100000, 100000, 100000]
            ),
            ["scales.smoke.toeplitz", "would need about"],
        ),
        (
            lambda p: p["scales"]["smoke"]["lorita_vit"].update(
                dim=8192, width=1.0, batch_size=4096
            ),
            ["scales.smoke.lorita_vit", "mem_mb=12000"],
        ),
        (lambda p: p.update(data_dir=str(REPO / "README.md")), ["'data_dir'", "README.md"]),
        (lambda p: p.update(results_dir="/proc/noaccess"), ["'results_dir'", "/proc"]),
        (lambda p: p.update(results_dir=str(REPO / "README.md/r")), ["'results_dir'", "a file"]),
    ],
)
def test_bad_settings_stop_validate_in_one_line(tmp_path, capsys, monkeypatch, mutate, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    path = project(tmp_path, mutate)
    err = one_line(capsys, ["validate", *smoke(path)])
    assert str(path) in err
    for part in expected:
        assert part in err


def test_shipped_params_pass_every_plan_check_at_every_scale(monkeypatch):
    """What the shipped scales request must fit: threads on 2 cores, every job's mem_mb."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    params = read_yaml(REPO / "params.yaml")
    for scale in params["scales"]:
        plan_checks({**params, "scale": scale}, REPO)
    for scale in ("smoke", "quick", "cpu-full"):
        jobs = estimates(params["scales"][scale])
        assert jobs and all(e.mb() < TRAIN_MEM_MB[e.study] for e in jobs)


def test_memory_estimate_of_an_fcn_counts_its_factors():
    block = {"lorita_fcn": {"depths": [6], "factors": [1, 3], "width": 500, "batch_size": 256}}
    one, three = estimates(block)
    # 784x500 + 4 x 500x500 + 500x10 weights and biases; N = 3 adds 2 squares per layer
    assert one.params == 784 * 500 + 4 * 500 * 500 + 500 * 10 + 5 * 500 + 10
    assert three.params == one.params + 2 * (5 * 500 * 500 + 10 * 10)
    assert three.mb() > one.mb() and three.mb("cuda") == three.mb()  # FCNs train on the CPU
    vit = {"lorita_vit": {**read_yaml(REPO / "params.yaml")["scales"]["paper"]["lorita_vit"]}}
    largest = max(estimates(vit), key=lambda e: e.params)
    assert largest.mb("cuda") < largest.mb()


def test_validate_starts_no_threads_and_no_torch(tmp_path):
    """threads 10^6 once started that many threads; validation must not even import torch."""
    path = project(tmp_path)
    code = (
        "import sys, threading; from lowrank.cli import main;"
        "rc = main(['validate', '--params', sys.argv[1]]);"
        "assert 'torch' not in sys.modules; assert threading.active_count() == 1; sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_device_cuda_without_gpu_is_refused_locally_only():
    params = {"device": "cuda"}
    with pytest.raises(UserError, match="no GPU is visible"):
        check_device(params, cluster=False, where=lambda _: "params.yaml", gpu=lambda: False)
    check_device(params, cluster=True, where=lambda _: "params.yaml", gpu=lambda: False)
    check_device(params, cluster=False, where=lambda _: "params.yaml", gpu=lambda: True)


def test_threads_above_the_cores_are_refused_locally_only():
    params = {"threads": 8, "scales": {"quick": {}}}
    with pytest.raises(UserError, match="has 4 CPU cores"):
        check_threads(params, "quick", cluster=False, where=lambda _: "p.yaml", cores=4)
    check_threads(params, "quick", cluster=True, where=lambda _: "p.yaml", cores=4)


# Where a value came from: params.yaml, a --configfile, or --config on the command line.
def test_a_bad_value_in_a_configfile_names_that_file(tmp_path, capsys):
    path = project(tmp_path)
    extra = tmp_path / "my overrides.yaml"
    extra.write_text("scales: {smoke: {lorita_fcn: {epochs: 0}}}\n")
    err = one_line(capsys, ["validate", *smoke(path), "--configfile", str(extra)])
    assert f"{extra}: params: key 'scales.smoke.lorita_fcn.epochs'" in err


def test_a_bad_value_on_the_command_line_names_it(tmp_path, capsys):
    path = project(tmp_path)
    err = one_line(capsys, ["validate", "--params", str(path), "--config", "threads=0"])
    assert "--config (command line): params: key 'threads'" in err


def test_a_partial_configfile_merges_as_in_snakemake(tmp_path, capsys):
    """An F with only one value is completed from params.yaml, as `snakemake --configfile F`."""
    path = project(tmp_path)
    extra = tmp_path / "f.yaml"
    extra.write_text("scales: {smoke: {lorita_fcn: {epochs: 1}}}\n")
    assert cli.main(["validate", *smoke(path), "--configfile", str(extra)]) == 0
    merged = load_params(path, configfiles=[extra])
    assert merged["scales"]["smoke"]["lorita_fcn"]["epochs"] == 1
    assert merged["scales"]["smoke"]["lorita_fcn"]["width"] == 64
    assert "rankconv" in merged["scales"]["smoke"]


def test_origin_finder_prefers_the_last_source():
    base = "params.yaml"
    find = origin_finder(base, [], {"scales": {"smoke": {"x": 1}}})
    assert find(["scales", "smoke", "x", "y"]) == "--config (command line)"
    assert find(["scales", "quick"]) == base


# File-system and data-format faults of the CLI: one line naming the file, no traceback.
@pytest.fixture
def data_copy(tmp_path, real_mnist_dir) -> Path:
    """A data_dir with real MNIST (linked) and its manifest (fetched first on a fresh clone)."""
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (folder / "mnist.pkl.gz").symlink_to(real_mnist_dir / "mnist/mnist.pkl.gz")
    shutil.copy(real_mnist_dir / "mnist/MANIFEST.json", folder)
    return tmp_path / "data"


def test_fetch_into_a_file_is_one_line(tmp_path, capsys):
    path = project(tmp_path)
    err = one_line(capsys, ["fetch", "mnist", "--params", str(path), "--data-dir", "README.md"])
    assert "README.md" in err and "not a directory" in err


def test_fetch_when_mnist_is_a_file_is_one_line(tmp_path, capsys):
    path = project(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d/mnist").write_text("")
    err = one_line(
        capsys, ["fetch", "mnist", "--params", str(path), "--data-dir", str(tmp_path / "d")]
    )
    assert "mnist" in err and "already exists" in err


def test_fetch_when_the_manifest_is_a_directory_is_one_line(tmp_path, capsys, data_copy):
    path = project(tmp_path)
    manifest = data_copy / "mnist/MANIFEST.json"
    manifest.unlink()
    manifest.mkdir()
    err = one_line(capsys, ["fetch", "mnist", "--params", str(path), "--data-dir", str(data_copy)])
    assert "MANIFEST.json" in err


def test_fetch_rewrites_a_manifest_that_is_not_json(tmp_path, capsys, data_copy):
    path = project(tmp_path)
    manifest = data_copy / "mnist/MANIFEST.json"
    manifest.write_text("{ not json")
    assert cli.main(["fetch", "mnist", "--params", str(path), "--data-dir", str(data_copy)]) == 0
    assert json.loads(manifest.read_text())["dataset"] == "MNIST"


def test_a_corrupt_summary_is_one_line_naming_it(tmp_path, capsys):
    path = project(tmp_path)
    train_dir = tmp_path / "fcn6_N1"
    train_dir.mkdir()
    (train_dir / "summary.json").write_text('{"runs": [')
    err = one_line(capsys, ["sweep", *smoke(path), "--train-dir", str(train_dir)])
    assert str(train_dir / "summary.json") in err and "not valid JSON" in err


def test_out_under_a_file_is_one_line(tmp_path, capsys):
    path = project(tmp_path)
    blocker = tmp_path / "taken"
    blocker.write_text("")
    argv = ["train", *smoke(path), "--depth", "6", "--factors", "1", "--out", str(blocker)]
    err = one_line(capsys, argv)
    assert f"--out {blocker}" in err and "is a file" in err


@pytest.mark.parametrize(
    "exc,expected",
    [
        (PermissionError(errno.EACCES, "Permission denied", "/r/out"), "/r/out: permission"),
        (OSError(errno.ENOSPC, "No space left on device", "/r/ck.pt"), "no space left"),
        (
            RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0"),
            "disk full",
        ),
        (
            RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 4 TB"),
            "out of memory",
        ),
        (MemoryError(), "out of memory"),
        (json.JSONDecodeError("Expecting value", "x", 0), "not valid JSON"),
        (yaml.YAMLError("bad"), "not valid YAML"),
    ],
)
def test_faults_become_one_line(capsys, monkeypatch, exc, expected):
    def fail(_args):
        raise exc

    monkeypatch.setattr(cli, "cmd_validate", fail)
    err = one_line(capsys, ["validate"])
    assert expected in err
    assert cli.main(["validate", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(monkeypatch):
    monkeypatch.setattr(cli, "cmd_validate", lambda _args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.main(["validate"])
    assert describe(ValueError("x")) is None


def test_ctrl_c_is_one_line_saying_how_to_resume(capsys, monkeypatch):
    def interrupted(_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_validate", interrupted)
    err = one_line(capsys, ["validate"], status=130)
    assert "interrupted" in err and "resumes from its last checkpoint" in err


def test_help_describes_every_command_in_full(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "toeplitz, bench, rankconv, tucker, report." in out


@pytest.mark.parametrize(
    "argv,cluster",
    [
        (["snakemake", "--cores", "2"], False),
        (["snakemake", "--executor", "slurm"], True),
        (["snakemake", "-e", "local"], False),
        (["snakemake", "--executor=slurm", "-n"], True),
        (["snakemake", "--profile", "workflow/profiles/slurm"], True),
        (["snakemake", "--profile", "workflow/profiles/default"], False),
    ],
)
def test_a_cluster_submission_is_recognized_from_the_command_line(argv, cluster):
    assert cluster_submission(argv, {}, REPO) is cluster


def test_jobs_get_the_params_the_plan_validated(tmp_path):
    """`--configfile F --config threads=1` reach every job as --configfile arguments."""
    path = project(tmp_path)
    extra = tmp_path / "my f.yaml"
    extra.write_text("scales: {smoke: {lorita_fcn: {epochs: 1}}}\n")
    args = job_args(tmp_path, [extra], {"threads": 1})
    assert job_args(tmp_path) == ""
    words = shlex.split(args)
    assert words[0::2] == ["--configfile", "--configfile"] and words[1] == str(extra)
    merged = load_params(path, configfiles=words[1::2])
    assert merged["threads"] == 1 and merged["scales"]["smoke"]["lorita_fcn"]["epochs"] == 1


def test_a_configfile_before_the_command_is_merged_first(tmp_path, capsys):
    """The workflow passes job_args right after `lowrank`, before the subcommand."""
    path = project(tmp_path)
    extra = tmp_path / "f.yaml"
    extra.write_text("threads: 0\n")
    err = one_line(capsys, ["--configfile", str(extra), "validate", "--params", str(path)])
    assert f"{extra}: params: key 'threads'" in err


def test_cpu_studies_refuse_device_cuda_without_a_gpu(tmp_path, capsys, monkeypatch):
    """FCN, Tucker and Toeplitz jobs once trained on the CPU without a word."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = project(tmp_path, lambda p: p.update(device="cuda"))
    argv = ["train", *smoke(path), "--depth", "6", "--factors", "1", "--out", str(tmp_path)]
    err = one_line(capsys, argv)
    assert "device" in err and "no CUDA device" in err


def test_a_log_folder_that_is_a_file_is_one_line(tmp_path):
    params = read_yaml(REPO / "params.yaml")
    (tmp_path / "logs").write_text("")
    with pytest.raises(UserError, match="log folder is not writable"):
        check_paths({**params, "results_dir": str(tmp_path / "r")}, tmp_path, lambda _: "p")
