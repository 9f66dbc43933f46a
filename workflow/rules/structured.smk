# LoRITa against structured pruning (seed 004: Tables 3-4), ResNet20 and VGG16.
# One training job per (configuration, N) runs every seed x weight decay; one sweep job each
# (LSVT/GSVT over the retained fractions, then the operating point, fine-tuning and CPU timing);
# one local job collects the realized models for the report's combined Pareto view.
STRUCT = f"{RES}/structured"
STRUCT_CFG = BLOCK["structured"]
STRUCT_JOBS = wh.model_job_names("structured", BLOCK)
# A paper-scale training job runs every seed x weight decay of one (model, dataset, N) for
# 200 epochs: days on a CPU, hours on a GPU (params `device`); quick jobs take seconds.
STRUCT_TRAIN_RUNTIME = 2880 if SCALE == "paper" else 60
STRUCT_SWEEP_RUNTIME = 240 if SCALE == "paper" else 30


localrules:
    pareto_structured,


rule train_structured:
    input:
        data=wh.model_study_data("structured", BLOCK, DATA, rules),
        stamp=STAMP["structured.train"],
    output:
        f"{STRUCT}/{{config}}_N{{n}}/summary.json",
    log:
        f"{LOGS}/train_structured/{{config}}_N{{n}}.log",
    wildcard_constraints:
        config=wh.config_pattern("structured", BLOCK),
        n=r"\d+",
    conda:
        CONDA_ENV
    threads: STRUCT_CFG["threads"]
    resources:
        mem_mb=8000,
        runtime=STRUCT_TRAIN_RUNTIME,
        gpu=GPU,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        out=lambda wc, output: wh.parent(output),
        settings=HASH["structured.train"],
    shell:
        "{params.lowrank} train-model --params {params.params:q} --step structured.train"
        " --study structured --config {wildcards.config} --factors {wildcards.n}"
        " --out {params.out:q} > {log:q} 2>&1"


rule sweep_structured:
    input:
        summary=f"{STRUCT}/{{config}}_N{{n}}/summary.json",
        stamp=STAMP["structured.sweep"],
    output:
        sweep=f"{STRUCT}/{{config}}_N{{n}}/sweep.csv",
        structured=f"{STRUCT}/{{config}}_N{{n}}/structured.json",
    log:
        f"{LOGS}/sweep_structured/{{config}}_N{{n}}.log",
    wildcard_constraints:
        config=wh.config_pattern("structured", BLOCK),
        n=r"\d+",
    conda:
        CONDA_ENV
    threads: STRUCT_CFG["threads"]
    resources:
        mem_mb=8000,
        runtime=STRUCT_SWEEP_RUNTIME,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        dir=lambda wc, output: wh.parent(output),
        settings=HASH["structured.sweep"],
    shell:
        "{params.lowrank} sweep-model --params {params.params:q} --step structured.sweep"
        " --study structured --train-dir {params.dir:q} > {log:q} 2>&1"


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
    params:
        lowrank=LOWRANK,
        params=PARAMS,
    shell:
        "{params.lowrank} pareto-model --params {params.params:q} --step structured.sweep"
        " --study structured --out {output:q} > {log:q} 2>&1"


STUDY_REPORT_INPUTS.extend(
    [f"{STRUCT}/{job}/{name}" for job in STRUCT_JOBS for name in ("summary.json", "sweep.csv")]
    + [f"{STRUCT}/pareto.csv"]
    + [f"{STRUCT}/{job}/structured.json" for job in STRUCT_JOBS]
)
REPORT_FIGURES["structured"] = wh.report_figures(report, "structured", SCALE)
