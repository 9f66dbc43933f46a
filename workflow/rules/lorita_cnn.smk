# LoRITa on CNNs (seed 004: Table 2, Figure 2 right, Figure 4), VGG13 and ResNet18.
# One training job per (configuration, N) runs every seed x weight decay; one sweep job each
# (LSVT/GSVT over the retained fractions);
# one local job collects the realized models for the report's combined Pareto view.
CNN = f"{RES}/lorita_cnn"
CNN_CFG = BLOCK["lorita_cnn"]
CNN_JOBS = wh.model_job_names("lorita_cnn", BLOCK)
# A paper-scale training job runs every seed x weight decay of one (model, dataset, N) for
# 200 epochs: days on a CPU, hours on a GPU (params `device`); quick jobs take seconds.
CNN_TRAIN_RUNTIME = 2880 if SCALE == "paper" else 60
CNN_SWEEP_RUNTIME = 240 if SCALE == "paper" else 30


localrules:
    pareto_lorita_cnn,


rule train_lorita_cnn:
    input:
        data=wh.model_study_data("lorita_cnn", BLOCK, DATA, rules),
        stamp=STAMP["lorita_cnn.train"],
    output:
        f"{CNN}/{{config}}_N{{n}}/summary.json",
    log:
        f"{LOGS}/train_lorita_cnn/{{config}}_N{{n}}.log",
    wildcard_constraints:
        config=wh.config_pattern("lorita_cnn", BLOCK),
        n=r"\d+",
    conda:
        CONDA_ENV
    threads: CNN_CFG["threads"]
    resources:
        mem_mb=8000,
        runtime=CNN_TRAIN_RUNTIME,
        gpu=GPU,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        out=lambda wc, output: wh.parent(output),
        settings=HASH["lorita_cnn.train"],
    shell:
        "{params.lowrank} train-model --params {params.params:q} --step lorita_cnn.train"
        " --study lorita_cnn --config {wildcards.config} --factors {wildcards.n}"
        " --out {params.out:q} > {log:q} 2>&1"


rule sweep_lorita_cnn:
    input:
        summary=f"{CNN}/{{config}}_N{{n}}/summary.json",
        stamp=STAMP["lorita_cnn.sweep"],
    output:
        sweep=f"{CNN}/{{config}}_N{{n}}/sweep.csv",
    log:
        f"{LOGS}/sweep_lorita_cnn/{{config}}_N{{n}}.log",
    wildcard_constraints:
        config=wh.config_pattern("lorita_cnn", BLOCK),
        n=r"\d+",
    conda:
        CONDA_ENV
    threads: CNN_CFG["threads"]
    resources:
        mem_mb=8000,
        runtime=CNN_SWEEP_RUNTIME,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        dir=lambda wc, output: wh.parent(output),
        settings=HASH["lorita_cnn.sweep"],
    shell:
        "{params.lowrank} sweep-model --params {params.params:q} --step lorita_cnn.sweep"
        " --study lorita_cnn --train-dir {params.dir:q} > {log:q} 2>&1"


rule pareto_lorita_cnn:
    input:
        [f"{CNN}/{job}/sweep.csv" for job in CNN_JOBS],
    output:
        f"{CNN}/pareto.csv",
    log:
        f"{LOGS}/pareto_lorita_cnn.log",
    conda:
        CONDA_ENV
    params:
        lowrank=LOWRANK,
        params=PARAMS,
    shell:
        "{params.lowrank} pareto-model --params {params.params:q} --step lorita_cnn.sweep"
        " --study lorita_cnn --out {output:q} > {log:q} 2>&1"


STUDY_REPORT_INPUTS.extend(
    [f"{CNN}/{job}/{name}" for job in CNN_JOBS for name in ("summary.json", "sweep.csv")]
    + [f"{CNN}/pareto.csv"]
)
REPORT_FIGURES["lorita_cnn"] = wh.report_figures(report, "lorita_cnn", SCALE)
