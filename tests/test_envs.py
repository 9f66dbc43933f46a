"""The conda environments parse and list every third-party package the code imports."""

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# import name -> conda package names that provide it
CONDA_NAME = {
    "torch": {"pytorch", "pytorch-gpu"},
    "yaml": {"pyyaml"},
    "matplotlib": {"matplotlib", "matplotlib-base"},
}
WORKFLOW_ONLY = {"snakemake"}  # the Snakefile's own runtime, not a rule's dependency


def third_party_imports() -> set[str]:
    names = set()
    for path in (REPO / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "lowrank"}


def env_packages(path: Path) -> set[str]:
    spec = yaml.safe_load(path.read_text())
    assert spec["channels"] and spec["name"] == path.stem
    names = set()
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            names |= {d.split("==")[0].split(">=")[0] for d in dep["pip"]}
        else:
            names.add(re.split(r"[=<>\[ ]", dep, maxsplit=1)[0].strip())
    return names


@pytest.mark.parametrize("env", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_names_every_imported_package(env):
    packages = env_packages(env)
    assert "python" in packages
    for module in third_party_imports() - WORKFLOW_ONLY:
        assert CONDA_NAME.get(module, {module}) & packages, f"{env.name} lacks {module}"


def test_both_cpu_and_cuda_envs_exist_and_rules_use_them():
    assert {p.name for p in (REPO / "envs").glob("*.yaml")} >= {
        "lowrank-cpu.yaml",
        "lowrank-cuda.yaml",
    }
    text = "".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
    blocks = re.split(r"^rule ", text, flags=re.M)[1:]
    python_rules = [b for b in blocks if "{params.lowrank}" in b]
    assert len(python_rules) >= 5
    for block in blocks:  # every rule runs code (ours or a shell's): environment and log
        assert "conda:" in block and "CONDA_ENV" in block, block.split(":")[0]
        assert "log:" in block, block.split(":")[0]
    for block in python_rules:  # and reads the run's resolved params
        assert "lowrank=LOWRANK" in block and "--params {params.params:q}" in block
    snakefile = (REPO / "Snakefile").read_text()
    assert "envs\" / f\"lowrank-{config.get('conda_env', 'cpu')}.yaml" in snakefile
