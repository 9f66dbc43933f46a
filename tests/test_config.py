import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lowrank.config import load_params, scale_block
from lowrank.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def project_copy(tmp_path: Path, mutate=None) -> Path:
    """params.yaml and its schema in a temp dir, optionally changed by `mutate(params)`."""
    (tmp_path / "workflow/schemas").mkdir(parents=True)
    shutil.copy(REPO / "workflow/schemas/params.schema.yaml", tmp_path / "workflow/schemas")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if mutate:
        mutate(params)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path / "params.yaml"


def test_the_shipped_params_are_valid_for_every_scale():
    params = load_params(REPO / "params.yaml")
    for scale in ("smoke", "quick", "paper"):
        assert scale_block(params, scale)["lorita_fcn"]["depths"]


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (
            lambda p: p["scales"]["quick"]["lorita_fcn"].update(epochs="four"),
            "scales.quick.lorita_fcn.epochs",
        ),
        (
            lambda p: p["scales"]["smoke"]["lorita_fcn"].update(widht=3),
            "scales.smoke.lorita_fcn.widht",
        ),
        (lambda p: p.update(scale="huge"), "'scale'"),
        (lambda p: p["scales"]["paper"]["lorita_fcn"].pop("seeds"), "seeds"),
        (
            lambda p: p["scales"]["quick"]["lorita_fcn"].update(retained_fractions=[0.5, 1.5]),
            "scales.quick.lorita_fcn.retained_fractions.1",
        ),
        (lambda p: p.update(threads=0), "threads"),
    ],
)
def test_schema_errors_name_the_key(tmp_path, mutate, expected):
    path = project_copy(tmp_path, mutate)
    with pytest.raises(UserError) as info:
        load_params(path)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def run_cli(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "lowrank.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )


def test_cli_bad_params_is_one_line_without_traceback(tmp_path):
    path = project_copy(tmp_path, lambda p: p.update(threads="two"))
    result = run_cli("validate", "--params", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "threads" in result.stderr and "Traceback" not in result.stderr


def test_cli_missing_params_file_names_it(tmp_path):
    result = run_cli("validate", "--params", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_cli_missing_data_names_the_file(tmp_path):
    path = project_copy(tmp_path, lambda p: p.update(data_dir=str(tmp_path / "empty")))
    result = run_cli(
        "train",
        "--params",
        str(path),
        "--scale",
        "smoke",
        "--depth",
        "6",
        "--factors",
        "1",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 2
    assert "MANIFEST.json" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_snakefile_rejects_bad_params_in_one_line(tmp_path):
    for name in ("Snakefile", "workflow", "src", "envs"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    project_copy(tmp_path / "p", lambda p: p["scales"]["quick"]["lorita_fcn"].update(lr="x"))
    shutil.copy(tmp_path / "p/params.yaml", tmp_path / "params.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.splitlines() if "params.yaml" in ln]
    assert lines and "scales.quick.lorita_fcn.lr" in lines[0]
    assert "Traceback" not in result.stderr


def test_dvc_study_stage_tracks_every_training_setting():
    """A new setting in the schema must reach dvc.yaml, or `dvc repro` would not rerun."""
    schema = yaml.safe_load((REPO / "workflow/schemas/params.schema.yaml").read_text())
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["study"]
    report_only = {
        "lorita_fcn": {"drop_tolerance", "converged_by"},
        "toeplitz": set(),
        "rankconv": {"target_acc", "early_iteration"},
        "tucker": set(),
        "lorita_cnn": {"drop_tolerance"},
        "lorita_vit": {"drop_tolerance"},
        "structured": set(),
    }
    for study, skip in report_only.items():
        keys = set(schema["$defs"]["scale_block"]["properties"][study]["properties"])
        prefix = f"scales.${{scale}}.{study}."
        tracked = {p.removeprefix(prefix) for p in stage["params"] if p.startswith(prefix)}
        assert tracked == keys - skip, study
    # results/<scale>/ is no DVC output (DVC would delete it); the study's stamp stands for it
    assert [next(iter(o)) for o in stage["outs"]] == ["stamps/study.json"]


def test_dvc_report_stage_tracks_rankconv_report_settings():
    """target_acc and early_iteration change the report only, so the report stage tracks them."""
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["report"]
    prefix = "scales.${scale}.rankconv."
    tracked = {p.removeprefix(prefix) for p in stage["params"] if p.startswith(prefix)}
    assert tracked == {"target_acc", "early_iteration"}
    assert "stamps/study.json" in stage["deps"]
