# The study's DAG: fetch MNIST -> train (FCN depth x N, all seeds per job) -> truncation
# sweeps -> FLOPs -> report. Outputs under results/<scale>/, logs under logs/<scale>/.
# Pick a scale with `--config scale=smoke|quick|paper`; every other setting is in params.yaml.
#
# One source of truth per run: the merged, validated config (params.yaml + --configfile +
# --config) is written to results/<scale>/params.resolved.yaml and every job reads it (an
# immutable copy named by its hash) with --params, so every override reaches the code.
import os
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

ROOT = Path(workflow.basedir)
sys.path.insert(0, str(ROOT / "src"))
from lowrank import workflow_helpers as wh  # noqa: E402
from lowrank.errors import UserError  # noqa: E402
from lowrank.preflight import cluster_submission, plan_checks  # noqa: E402


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


SCHEMA = ROOT / "workflow/schemas/params.schema.yaml"
# The package's checks first: one line naming the file (params.yaml, a --configfile or
# --config) and the key, integers that are integers, paths, threads, device and memory
# (lowrank.preflight, the same function `lowrank validate` runs).
CLI_CONFIG = (workflow.config_settings.configfiles, workflow.config_settings.config)
try:
    plan_checks(config, ROOT, *CLI_CONFIG, cluster=cluster_submission(sys.argv, os.environ, ROOT))
except UserError as exc:
    sys.exit(str(exc))  # the message starts with the file it names
validate(config, str(SCHEMA), set_default=False)  # Snakemake's own check of the same schema

SCALE = config["scale"]
BLOCK = config["scales"][SCALE]
DATA = config["data_dir"]
RES = str(Path(config["results_dir"], SCALE))
LOGS = str(Path("logs", SCALE))
THREADS = config["threads"]
# Training rules ask the cluster for a GPU only when params `device` says cuda.
GPU = 1 if config.get("device") == "cuda" else 0
# The package runs from src/ in whichever Python the job has: the project's venv by default,
# the rule's conda environment under --use-conda (read from the workflow's public settings
# object by name, without importing Snakemake's internal settings types).
USE_CONDA = any(
    getattr(m, "name", str(m)).lower() == "conda"
    for m in workflow.deployment_settings.deployment_method
)
LOWRANK = wh.lowrank_command(ROOT, "python" if USE_CONDA else sys.executable)
CONDA_ENV = str(ROOT / "envs" / f"lowrank-{config.get('conda_env', 'cpu')}.yaml")

# Every job reads exactly this run's settings.
try:
    RESOLVED, RESOLVED_HASH = wh.write_resolved(config, RES)
except OSError as exc:
    sys.exit(f"results_dir: cannot write {exc.filename}: {exc.strerror}")
# A `params:` entry of every job, excluded from Snakemake's params trigger (see not_a_trigger).
PARAMS = wh.not_a_trigger(str(RESOLVED))
# Per-step stamps: rewritten only when that step's settings change, and an input of the
# step's rules, so a changed value reruns exactly the affected jobs without Snakemake's
# metadata (a deleted .snakemake/, copied results).
STEPS = wh.run_steps(BLOCK)
try:
    STAMP = wh.write_stamps(BLOCK, config, STEPS, Path(RES, "stamps"))
except OSError as exc:
    sys.exit(f"results_dir: cannot write {exc.filename}: {exc.strerror}")
HASH = {name: wh.step_hash(*wh.parse_step(name), BLOCK, config) for name in STEPS}

# Files each study's report section reads; every workflow/rules/<study>.smk appends to it.
STUDY_REPORT_INPUTS = []
# The figures of each study in the Snakemake report (name -> report-flagged path).
REPORT_FIGURES = {}


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
