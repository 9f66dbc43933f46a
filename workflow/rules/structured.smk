# LoRITa against structured pruning (seed 004: Tables 3-4), ResNet20 and VGG16.
# One training job per (configuration, N) runs every seed x weight decay; one sweep job each
# (LSVT/GSVT over the retained fractions, then the operating point, fine-tuning and CPU timing);
# one local job collects the realized models for the report's combined Pareto view.
include: "model_studies.smk"

STRUCT = f"{RES}/structured"
STRUCT_CFG = BLOCK["structured"]
STRUCT_JOBS = model_job_names("structured", BLOCK)
STRUCT_TRAIN_HASH, STRUCT_SWEEP_HASH = model_study_hashes(
    "structured",
    ("retained_fractions", "tolerance", "finetune_steps", "finetune_lr", "speed_batch",
     "speed_repeats"),
)

localrules: pareto_structured


rule train_structured:
    input:
        model_study_data("structured"),
    output:
        f"{STRUCT}/{{config}}_N{{n}}/summary.json",
    wildcard_constraints:
        config=config_pattern("structured"),
        n=r"\d+",
    params:
        out=lambda wc: f"{STRUCT}/{wc.config}_N{wc.n}",
        settings=STRUCT_TRAIN_HASH,
    threads: STRUCT_CFG["threads"]
    resources:
        mem_mb=8000,
        runtime=MODEL_TRAIN_RUNTIME,
        gpu=MODEL_GPU,
    log:
        f"{LOGS}/train_structured/{{config}}_N{{n}}.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} train-model --scale {SCALE} --study structured --config {wildcards.config}"
        " --factors {wildcards.n} --out {params.out} > {log} 2>&1"


rule sweep_structured:
    input:
        f"{STRUCT}/{{config}}_N{{n}}/summary.json",
    output:
        sweep=f"{STRUCT}/{{config}}_N{{n}}/sweep.csv",
        structured=f"{STRUCT}/{{config}}_N{{n}}/structured.json",
    wildcard_constraints:
        config=config_pattern("structured"),
        n=r"\d+",
    params:
        dir=lambda wc: f"{STRUCT}/{wc.config}_N{wc.n}",
        settings=STRUCT_SWEEP_HASH,
    threads: STRUCT_CFG["threads"]
    resources:
        mem_mb=8000,
        runtime=240 if SCALE == "paper" else 30,
    log:
        f"{LOGS}/sweep_structured/{{config}}_N{{n}}.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} sweep-model --scale {SCALE} --study structured --train-dir {params.dir}"
        " > {log} 2>&1"


rule pareto_structured:
    input:
        [f"{STRUCT}/{job}/sweep.csv" for job in STRUCT_JOBS],
        [f"{STRUCT}/{job}/structured.json" for job in STRUCT_JOBS],
    output:
        f"{STRUCT}/pareto.csv",
    log:
        f"{LOGS}/pareto_structured.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} pareto-model --scale {SCALE} --study structured --out {output} > {log} 2>&1"


STUDY_REPORT_INPUTS.extend(
    [f"{STRUCT}/{job}/{name}" for job in STRUCT_JOBS for name in ("summary.json", "sweep.csv")]
    + [f"{STRUCT}/pareto.csv"]
    + [f"{STRUCT}/{job}/structured.json" for job in STRUCT_JOBS]
)
