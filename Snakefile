# The study's DAG: fetch MNIST -> train (FCN depth x N, all seeds per job) -> truncation
# sweeps -> FLOPs -> report. Outputs under results/<scale>/, logs under logs/<scale>/.
# Pick a scale with `--config scale=smoke|quick|paper`; every other setting is in params.yaml.
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

ROOT = Path(workflow.basedir)
sys.path.insert(0, str(ROOT / "src"))
from lowrank.config import params_hash, read_yaml, validate  # noqa: E402
from lowrank.errors import UserError  # noqa: E402

configfile: "params.yaml"
report: "workflow/report/workflow.rst"

try:
    validate(config, read_yaml(ROOT / "workflow/schemas/params.schema.yaml"))
except UserError as exc:
    sys.exit(f"params.yaml: {exc}")

SCALE = config["scale"]
BLOCK = config["scales"][SCALE]
DATA = config["data_dir"]
RES = f"{config['results_dir']}/{SCALE}"
LOGS = f"logs/{SCALE}"
THREADS = config["threads"]
# Training rules ask the cluster for a GPU only when params `device` says cuda.
GPU = 1 if config.get("device") == "cuda" else 0
USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
# The package runs from src/ in whichever Python the job has: the project's venv by default,
# the rule's conda environment under --use-conda.
PY = "python" if USE_CONDA else sys.executable
LOWRANK = f"PYTHONPATH={ROOT / 'src'}${{PYTHONPATH:+:$PYTHONPATH}} {PY} -m lowrank.cli"
CONDA_ENV = str(ROOT / "envs" / f"lowrank-{config.get('conda_env', 'cpu')}.yaml")

# Files each study's report section reads; every workflow/rules/<study>.smk appends to it.
STUDY_REPORT_INPUTS = []

include: "workflow/rules/data.smk"
include: "workflow/rules/lorita_fcn.smk"
if "rankconv" in BLOCK:
    include: "workflow/rules/rankconv.smk"
if "lorita_cnn" in BLOCK:
    include: "workflow/rules/lorita_cnn.smk"
if "lorita_vit" in BLOCK:
    include: "workflow/rules/lorita_vit.smk"
if "structured" in BLOCK:
    include: "workflow/rules/structured.smk"
if "toeplitz" in BLOCK:
    include: "workflow/rules/toeplitz.smk"
if "tucker" in BLOCK:
    include: "workflow/rules/tucker.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "reports/report.html",


rule study:
    """Everything but the report (the DVC `study` stage)."""
    input:
        rules.report.input,
