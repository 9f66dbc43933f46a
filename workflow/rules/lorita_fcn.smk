# LoRITa on FCNs (seed 004, Table 1 and Figure 2 left): one training job per (depth, N) runs
# every seed and weight decay, so the job count stays small at every scale.
# Each step's settings (lowrank.workflow_helpers.step_settings) are its rerun trigger twice:
# Snakemake's `params` trigger and the step's stamp file (an input), e.g. a new
# retained-fraction grid reruns only the sweeps.
FCN = f"{RES}/lorita_fcn"
FCN_CONFIGS = expand(
    "fcn{depth}_N{n}",
    depth=BLOCK["lorita_fcn"]["depths"],
    n=BLOCK["lorita_fcn"]["factors"],
)
# Torch threads per FCN job: the block's `threads` (1 runs two jobs side by side on 2 cores,
# measured 1.3x the throughput of one 2-thread job), else the top-level `threads`.
FCN_THREADS = BLOCK["lorita_fcn"].get("threads") or THREADS


wildcard_constraints:
    depth=r"\d+",
    n=r"\d+",


rule train_lorita_fcn:
    input:
        data=rules.fetch_mnist.output,
        stamp=STAMP["lorita_fcn.train"],
    output:
        f"{FCN}/fcn{{depth}}_N{{n}}/summary.json",
    log:
        f"{LOGS}/train_lorita_fcn/fcn{{depth}}_N{{n}}.log",
    conda:
        CONDA_ENV
    threads: FCN_THREADS
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPU,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        out=lambda wc, output: wh.parent(output),
        settings=HASH["lorita_fcn.train"],
    shell:
        "{params.lowrank} train --params {params.params:q} --step lorita_fcn.train"
        " --depth {wildcards.depth} --factors {wildcards.n} --out {params.out:q} > {log:q} 2>&1"


rule sweep_lorita_fcn:
    input:
        summary=f"{FCN}/fcn{{depth}}_N{{n}}/summary.json",
        stamp=STAMP["lorita_fcn.sweep"],
    output:
        sweep=f"{FCN}/fcn{{depth}}_N{{n}}/sweep.csv",
        spectra=f"{FCN}/fcn{{depth}}_N{{n}}/spectra.json",
    log:
        f"{LOGS}/sweep_lorita_fcn/fcn{{depth}}_N{{n}}.log",
    conda:
        CONDA_ENV
    threads: FCN_THREADS
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        dir=lambda wc, output: wh.parent(output),
        settings=HASH["lorita_fcn.sweep"],
    shell:
        "{params.lowrank} sweep --params {params.params:q} --step lorita_fcn.sweep"
        " --train-dir {params.dir:q} > {log:q} 2>&1"


rule flops_lorita_fcn:
    input:
        stamp=STAMP["lorita_fcn.flops"],
    output:
        f"{FCN}/flops.csv",
    log:
        f"{LOGS}/flops_lorita_fcn.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        settings=HASH["lorita_fcn.flops"],
    shell:
        "{params.lowrank} flops --params {params.params:q} --step lorita_fcn.flops"
        " --out {output:q} > {log:q} 2>&1"


REPORT_FIGURES["lorita_fcn"] = wh.report_figures(report, "lorita_fcn", SCALE)
