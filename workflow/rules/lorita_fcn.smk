# LoRITa on FCNs (seed 004, Table 1 and Figure 2 left): one training job per (depth, N) runs
# every seed and weight decay, so the job count stays small at every scale.
FCN = f"{RES}/lorita_fcn"
# Hashes of the settings each step depends on: a changed value reruns exactly those jobs
# (Snakemake's `params` rerun trigger), e.g. a new retained-fraction grid reruns only sweeps.
SWEEP_KEYS = ("retained_fractions", "truncate_head", "gsvt_max_gap")
REPORT_KEYS = ("drop_tolerance", "converged_by")
TRAIN_HASH = params_hash({k: v for k, v in BLOCK["lorita_fcn"].items()
                          if k not in SWEEP_KEYS + REPORT_KEYS})
SWEEP_HASH = params_hash({k: BLOCK["lorita_fcn"][k] for k in SWEEP_KEYS})
FCN_CONFIGS = expand("fcn{depth}_N{n}", depth=BLOCK["lorita_fcn"]["depths"],
                     n=BLOCK["lorita_fcn"]["factors"])

# Torch threads per FCN job: the block's `threads` (1 runs two jobs side by side on 2 cores,
# measured 1.3x the throughput of one 2-thread job), else the top-level `threads`.
FCN_THREADS = BLOCK["lorita_fcn"].get("threads") or THREADS

wildcard_constraints:
    depth=r"\d+",
    n=r"\d+",


rule train_lorita_fcn:
    input:
        rules.fetch_mnist.output,
    output:
        f"{FCN}/fcn{{depth}}_N{{n}}/summary.json",
    params:
        out=lambda wc: f"{FCN}/fcn{wc.depth}_N{wc.n}",
        settings=TRAIN_HASH,
    threads: FCN_THREADS
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPU,
    log:
        f"{LOGS}/train_lorita_fcn/fcn{{depth}}_N{{n}}.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} train --scale {SCALE} --depth {wildcards.depth} --factors {wildcards.n}"
        " --out {params.out} > {log} 2>&1"


rule sweep_lorita_fcn:
    input:
        f"{FCN}/fcn{{depth}}_N{{n}}/summary.json",
    output:
        sweep=f"{FCN}/fcn{{depth}}_N{{n}}/sweep.csv",
        spectra=f"{FCN}/fcn{{depth}}_N{{n}}/spectra.json",
    params:
        dir=lambda wc: f"{FCN}/fcn{wc.depth}_N{wc.n}",
        settings=SWEEP_HASH,
    threads: FCN_THREADS
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        f"{LOGS}/sweep_lorita_fcn/fcn{{depth}}_N{{n}}.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} sweep --scale {SCALE} --train-dir {params.dir} > {log} 2>&1"


rule flops_lorita_fcn:
    params:
        settings=params_hash([BLOCK["lorita_fcn"][k] for k in ("depths", "factors", "width")]),
    output:
        f"{FCN}/flops.csv",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        f"{LOGS}/flops_lorita_fcn.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} flops --scale {SCALE} --out {output} > {log} 2>&1"
