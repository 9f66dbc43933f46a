# Rank-constrained convolution training (seed 000): one job per (kernel, rank, variant) trains
# every seed of that configuration (sequentially or as vmap ensembles), so the paper grid is
# 3 kernels x (K + 1) ranks x 4 variants = 72 jobs of 50 seeds each.
# Every setting a run depends on is its rerun trigger (report-only keys excluded), so changing
# target_acc reruns only the report; adding seeds reruns the jobs, which reuse finished seeds.
RC = f"{RES}/rankconv"
RC_CFG = BLOCK["rankconv"]
RC_THREADS = RC_CFG["threads"]
RC_CONFIGS = wh.rankconv_configs(RC_CFG)
# The fetch rule of the dataset: fetch_mnist for mnist/mnist32, fetch_cifar10 for cifar10.
RC_DATA = wh.fetch_output(rules, RC_CFG["dataset"])
RC_STRATEGY = [f"{RC}/strategy.json"] if RC_CFG["strategy"] == "auto" else []
RC_STRATEGY_ARG = wh.option("--strategy-file", RC_STRATEGY)


wildcard_constraints:
    rc_kernel=r"\d+",
    rc_rank=r"r\d+|dense",
    rc_variant=r"plain|dropout|batchnorm|both",


rule rankconv_strategy:
    """Time sequential vs vmap training once on this device; every job reads the choice."""
    input:
        data=RC_DATA,
        stamp=STAMP["rankconv.strategy"],
    output:
        f"{RC}/strategy.json",
    log:
        f"{LOGS}/rankconv/strategy.log",
    conda:
        CONDA_ENV
    threads: RC_THREADS
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        settings=HASH["rankconv.strategy"],
    shell:
        "{params.lowrank} rankconv --params {params.params:q} --step rankconv.strategy"
        " --strategy-only --out {output:q} > {log:q} 2>&1"


rule train_rankconv:
    input:
        data=RC_DATA,
        strategy=RC_STRATEGY,
        stamp=STAMP["rankconv.train"],
    output:
        f"{RC}/k{{rc_kernel}}_{{rc_rank}}_{{rc_variant}}/summary.json",
    log:
        f"{LOGS}/rankconv/k{{rc_kernel}}_{{rc_rank}}_{{rc_variant}}.log",
    conda:
        CONDA_ENV
    threads: RC_THREADS
    resources:
        mem_mb=8000,
        runtime=720,
        gpu=GPU,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        out=lambda wc, output: wh.parent(output),
        rank=lambda wc: wc.rc_rank.removeprefix("r"),
        strategy=RC_STRATEGY_ARG,
        settings=HASH["rankconv.train"],
    shell:
        "{params.lowrank} rankconv --params {params.params:q} --step rankconv.train"
        " --kernel {wildcards.rc_kernel} --rank {params.rank} --variant {wildcards.rc_variant}"
        " {params.strategy} --out {params.out:q} > {log:q} 2>&1"


STUDY_REPORT_INPUTS.extend(expand(f"{RC}/{{config}}/summary.json", config=RC_CONFIGS))
REPORT_FIGURES["rankconv"] = wh.report_figures(report, "rankconv", SCALE)
