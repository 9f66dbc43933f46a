# LoRITa on ViTs (seed 004: Tables 1-2, Figures 5-6), SimpleViT.
# One training job per (configuration, N) runs every seed x weight decay; one sweep job each
# (LSVT/GSVT over the retained fractions);
# one local job collects the realized models for the report's combined Pareto view.
include: "model_studies.smk"

VIT = f"{RES}/lorita_vit"
VIT_CFG = BLOCK["lorita_vit"]
VIT_JOBS = model_job_names("lorita_vit", BLOCK)
VIT_TRAIN_HASH, VIT_SWEEP_HASH = model_study_hashes("lorita_vit", ("retained_fractions",))

localrules: pareto_lorita_vit


rule train_lorita_vit:
    input:
        model_study_data("lorita_vit"),
    output:
        f"{VIT}/{{config}}_N{{n}}/summary.json",
    wildcard_constraints:
        config=config_pattern("lorita_vit"),
        n=r"\d+",
    params:
        out=lambda wc: f"{VIT}/{wc.config}_N{wc.n}",
        settings=VIT_TRAIN_HASH,
    threads: VIT_CFG["threads"]
    resources:
        mem_mb=8000,
        runtime=MODEL_TRAIN_RUNTIME,
        gpu=MODEL_GPU,
    log:
        f"{LOGS}/train_lorita_vit/{{config}}_N{{n}}.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} train-model --scale {SCALE} --study lorita_vit --config {wildcards.config}"
        " --factors {wildcards.n} --out {params.out} > {log} 2>&1"


rule sweep_lorita_vit:
    input:
        f"{VIT}/{{config}}_N{{n}}/summary.json",
    output:
        sweep=f"{VIT}/{{config}}_N{{n}}/sweep.csv",
    wildcard_constraints:
        config=config_pattern("lorita_vit"),
        n=r"\d+",
    params:
        dir=lambda wc: f"{VIT}/{wc.config}_N{wc.n}",
        settings=VIT_SWEEP_HASH,
    threads: VIT_CFG["threads"]
    resources:
        mem_mb=8000,
        runtime=240 if SCALE == "paper" else 30,
    log:
        f"{LOGS}/sweep_lorita_vit/{{config}}_N{{n}}.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} sweep-model --scale {SCALE} --study lorita_vit --train-dir {params.dir}"
        " > {log} 2>&1"


rule pareto_lorita_vit:
    input:
        [f"{VIT}/{job}/sweep.csv" for job in VIT_JOBS],
    output:
        f"{VIT}/pareto.csv",
    log:
        f"{LOGS}/pareto_lorita_vit.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} pareto-model --scale {SCALE} --study lorita_vit --out {output} > {log} 2>&1"


STUDY_REPORT_INPUTS.extend(
    [f"{VIT}/{job}/{name}" for job in VIT_JOBS for name in ("summary.json", "sweep.csv")]
    + [f"{VIT}/pareto.csv"]
)
