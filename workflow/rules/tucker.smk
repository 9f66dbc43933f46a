# Tucker decomposition (seeds 002 and 003), per network of `tucker.networks`: train the dense
# network (all seeds in one job) -> post-hoc Tucker-2 + fine-tuning, and the Tucker-factorized
# network trained from scratch -> one Pareto table. 3 jobs per network plus one.
# Each step's rerun trigger is the settings it depends on (lowrank.train.tucker_keys): a new
# timing setting reruns only the measuring steps, a new rank rule only the post-hoc step.
TUCKER = f"{RES}/tucker"
TCFG = BLOCK["tucker"]
TUCKER_DATA = wh.fetch_output(rules, TCFG["dataset"])
# VGG16's post-hoc rank search (up to 128 evaluations per layer) makes paper jobs long.
TUCKER_RUNTIME = 1440 if SCALE == "paper" else 240


wildcard_constraints:
    network=r"[A-Za-z0-9_\-]+",


rule tucker_dense:
    input:
        data=TUCKER_DATA,
        stamp=STAMP["tucker.dense"],
    output:
        f"{TUCKER}/{{network}}/dense.json",
    log:
        f"{LOGS}/tucker_dense/{{network}}.log",
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=TUCKER_RUNTIME,
        gpu=GPU,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        out=lambda wc, output: wh.parent(output),
        settings=HASH["tucker.dense"],
    shell:
        "{params.lowrank} tucker dense --params {params.params:q} --step tucker.dense"
        " --network {wildcards.network} --out {params.out:q} > {log:q} 2>&1"


rule tucker_posthoc:
    input:
        dense=f"{TUCKER}/{{network}}/dense.json",
        stamp=STAMP["tucker.posthoc"],
    output:
        f"{TUCKER}/{{network}}/posthoc.json",
    log:
        f"{LOGS}/tucker_posthoc/{{network}}.log",
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=TUCKER_RUNTIME,
        gpu=GPU,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        out=lambda wc, output: wh.parent(output),
        settings=HASH["tucker.posthoc"],
    shell:
        "{params.lowrank} tucker posthoc --params {params.params:q} --step tucker.posthoc"
        " --network {wildcards.network} --out {params.out:q} > {log:q} 2>&1"


rule tucker_trained:
    input:
        dense=f"{TUCKER}/{{network}}/dense.json",
        stamp=STAMP["tucker.trained"],
    output:
        f"{TUCKER}/{{network}}/trained.json",
    log:
        f"{LOGS}/tucker_trained/{{network}}.log",
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=TUCKER_RUNTIME,
        gpu=GPU,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        out=lambda wc, output: wh.parent(output),
        settings=HASH["tucker.trained"],
    shell:
        "{params.lowrank} tucker trained --params {params.params:q} --step tucker.trained"
        " --network {wildcards.network} --out {params.out:q} > {log:q} 2>&1"


rule tucker_pareto:
    input:
        steps=expand(
            f"{TUCKER}/{{network}}/{{step}}.json",
            network=TCFG["networks"],
            step=["posthoc", "trained"],
        ),
        stamp=STAMP["tucker.pareto"],
    output:
        f"{TUCKER}/pareto.csv",
    log:
        f"{LOGS}/tucker_pareto.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        settings=HASH["tucker.pareto"],
    shell:
        "{params.lowrank} tucker pareto --params {params.params:q} --step tucker.pareto"
        " --out {output:q} > {log:q} 2>&1"


STUDY_REPORT_INPUTS.extend(
    expand(
        f"{TUCKER}/{{network}}/{{step}}.json",
        network=TCFG["networks"],
        step=["dense", "posthoc", "trained"],
    )
    + [f"{TUCKER}/pareto.csv"]
)
REPORT_FIGURES["tucker"] = wh.report_figures(report, "tucker", SCALE)
