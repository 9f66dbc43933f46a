# LoRITa on ViTs (seed 004: Tables 1-2, Figures 5-6), SimpleViT.
# One training job per (configuration, N) runs every seed x weight decay; one sweep job each
# (LSVT/GSVT over the retained fractions);
# one local job collects the realized models for the report's combined Pareto view.
VIT = f"{RES}/lorita_vit"
VIT_CFG = BLOCK["lorita_vit"]
VIT_JOBS = wh.model_job_names("lorita_vit", BLOCK)
# A paper-scale training job runs every seed x weight decay of one (model, dataset, N) for
# 200 epochs: days on a CPU, hours on a GPU (params `device`); quick jobs take seconds.
VIT_TRAIN_RUNTIME = 2880 if SCALE == "paper" else 60
VIT_SWEEP_RUNTIME = 240 if SCALE == "paper" else 30


localrules:
    pareto_lorita_vit,


rule train_lorita_vit:
    input:
        data=wh.model_study_data("lorita_vit", BLOCK, DATA, rules),
        stamp=STAMP["lorita_vit.train"],
    output:
        f"{VIT}/{{config}}_N{{n}}/summary.json",
    log:
        f"{LOGS}/train_lorita_vit/{{config}}_N{{n}}.log",
    wildcard_constraints:
        config=wh.config_pattern("lorita_vit", BLOCK),
        n=r"\d+",
    conda:
        CONDA_ENV
    threads: VIT_CFG["threads"]
    resources:
        mem_mb=8000,
        runtime=VIT_TRAIN_RUNTIME,
        gpu=GPU,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        out=lambda wc, output: wh.parent(output),
        settings=HASH["lorita_vit.train"],
    shell:
        "{params.lowrank} train-model --params {params.params:q} --step lorita_vit.train"
        " --study lorita_vit --config {wildcards.config} --factors {wildcards.n}"
        " --out {params.out:q} > {log:q} 2>&1"


rule sweep_lorita_vit:
    input:
        summary=f"{VIT}/{{config}}_N{{n}}/summary.json",
        stamp=STAMP["lorita_vit.sweep"],
    output:
        sweep=f"{VIT}/{{config}}_N{{n}}/sweep.csv",
    log:
        f"{LOGS}/sweep_lorita_vit/{{config}}_N{{n}}.log",
    wildcard_constraints:
        config=wh.config_pattern("lorita_vit", BLOCK),
        n=r"\d+",
    conda:
        CONDA_ENV
    threads: VIT_CFG["threads"]
    resources:
        mem_mb=8000,
        runtime=VIT_SWEEP_RUNTIME,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        dir=lambda wc, output: wh.parent(output),
        settings=HASH["lorita_vit.sweep"],
    shell:
        "{params.lowrank} sweep-model --params {params.params:q} --step lorita_vit.sweep"
        " --study lorita_vit --train-dir {params.dir:q} > {log:q} 2>&1"


rule pareto_lorita_vit:
    input:
        [f"{VIT}/{job}/sweep.csv" for job in VIT_JOBS],
    output:
        f"{VIT}/pareto.csv",
    log:
        f"{LOGS}/pareto_lorita_vit.log",
    conda:
        CONDA_ENV
    params:
        lowrank=LOWRANK,
        params=PARAMS,
    shell:
        "{params.lowrank} pareto-model --params {params.params:q} --step lorita_vit.sweep"
        " --study lorita_vit --out {output:q} > {log:q} 2>&1"


STUDY_REPORT_INPUTS.extend(
    [f"{VIT}/{job}/{name}" for job in VIT_JOBS for name in ("summary.json", "sweep.csv")]
    + [f"{VIT}/pareto.csv"]
)
REPORT_FIGURES["lorita_vit"] = wh.report_figures(report, "lorita_vit", SCALE)
