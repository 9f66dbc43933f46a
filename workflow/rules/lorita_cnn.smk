# LoRITa on CNNs (seed 004: Table 2, Figure 2 right, Figure 4), VGG13 and ResNet18.
# One training job per (configuration, N) runs every seed x weight decay; one sweep job each
# (LSVT/GSVT over the retained fractions);
# one local job collects the realized models for the report's combined Pareto view.
include: "model_studies.smk"

CNN = f"{RES}/lorita_cnn"
CNN_CFG = BLOCK["lorita_cnn"]
CNN_JOBS = model_job_names("lorita_cnn", BLOCK)
CNN_TRAIN_HASH, CNN_SWEEP_HASH = model_study_hashes("lorita_cnn", ("retained_fractions",))

localrules: pareto_lorita_cnn


rule train_lorita_cnn:
    input:
        model_study_data("lorita_cnn"),
    output:
        f"{CNN}/{{config}}_N{{n}}/summary.json",
    wildcard_constraints:
        config=config_pattern("lorita_cnn"),
        n=r"\d+",
    params:
        out=lambda wc: f"{CNN}/{wc.config}_N{wc.n}",
        settings=CNN_TRAIN_HASH,
    threads: CNN_CFG["threads"]
    resources:
        mem_mb=8000,
        runtime=MODEL_TRAIN_RUNTIME,
        gpu=MODEL_GPU,
    log:
        f"{LOGS}/train_lorita_cnn/{{config}}_N{{n}}.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} train-model --scale {SCALE} --study lorita_cnn --config {wildcards.config}"
        " --factors {wildcards.n} --out {params.out} > {log} 2>&1"


rule sweep_lorita_cnn:
    input:
        f"{CNN}/{{config}}_N{{n}}/summary.json",
    output:
        sweep=f"{CNN}/{{config}}_N{{n}}/sweep.csv",
    wildcard_constraints:
        config=config_pattern("lorita_cnn"),
        n=r"\d+",
    params:
        dir=lambda wc: f"{CNN}/{wc.config}_N{wc.n}",
        settings=CNN_SWEEP_HASH,
    threads: CNN_CFG["threads"]
    resources:
        mem_mb=8000,
        runtime=240 if SCALE == "paper" else 30,
    log:
        f"{LOGS}/sweep_lorita_cnn/{{config}}_N{{n}}.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} sweep-model --scale {SCALE} --study lorita_cnn --train-dir {params.dir}"
        " > {log} 2>&1"


rule pareto_lorita_cnn:
    input:
        [f"{CNN}/{job}/sweep.csv" for job in CNN_JOBS],
    output:
        f"{CNN}/pareto.csv",
    log:
        f"{LOGS}/pareto_lorita_cnn.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} pareto-model --scale {SCALE} --study lorita_cnn --out {output} > {log} 2>&1"


STUDY_REPORT_INPUTS.extend(
    [f"{CNN}/{job}/{name}" for job in CNN_JOBS for name in ("summary.json", "sweep.csv")]
    + [f"{CNN}/pareto.csv"]
)
