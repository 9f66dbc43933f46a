# Rank-constrained convolution training (seed 000): one job per (kernel, rank, variant) trains
# every seed of that configuration (sequentially or as vmap ensembles), so the paper grid is
# 3 kernels x (K + 1) ranks x 4 variants = 72 jobs of 50 seeds each.
RC = f"{RES}/rankconv"
RC_CFG = BLOCK["rankconv"]
RC_THREADS = RC_CFG["threads"]
# Everything a run depends on (report-only keys excluded), so changing target_acc reruns
# only the report; adding seeds reruns the jobs, which reuse their finished seeds.
RC_HASH = params_hash([{k: v for k, v in RC_CFG.items()
                        if k not in ("target_acc", "early_iteration")}, config["device"]])
RC_PROBE_HASH = params_hash([{k: v for k, v in RC_CFG.items()
                              if k not in ("target_acc", "early_iteration", "seeds")},
                             config["device"]])


def _rc_configs():
    out = []
    for entry in RC_CFG["grid"]:
        k = entry["kernel"]
        ranks = [*range(1, k + 1), "dense"] if entry["ranks"] == "all" else entry["ranks"]
        out += [f"k{k}_{'dense' if r == 'dense' else f'r{r}'}_{v}"
                for r in ranks for v in RC_CFG["variants"]]
    return out


RC_CONFIGS = _rc_configs()
# The fetch rule of the dataset: fetch_mnist for mnist/mnist32, fetch_cifar10 for cifar10.
RC_DATA = (rules.fetch_mnist.output if RC_CFG["dataset"].startswith("mnist")
           else getattr(rules, "fetch_" + RC_CFG["dataset"].removesuffix("_gray")).output)
RC_STRATEGY = [f"{RC}/strategy.json"] if RC_CFG["strategy"] == "auto" else []

wildcard_constraints:
    rc_kernel=r"\d+",
    rc_rank=r"r\d+|dense",
    rc_variant=r"plain|dropout|batchnorm|both",


rule rankconv_strategy:
    """Time sequential vs vmap training once on this device; every job reads the choice."""
    input:
        RC_DATA,
    output:
        f"{RC}/strategy.json",
    params:
        settings=RC_PROBE_HASH,
    threads: RC_THREADS
    resources:
        mem_mb=4000,
        runtime=10,
    log:
        f"{LOGS}/rankconv/strategy.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} rankconv --scale {SCALE} --strategy-only --out {output} > {log} 2>&1"


rule train_rankconv:
    input:
        RC_DATA,
        RC_STRATEGY,
    output:
        f"{RC}/k{{rc_kernel}}_{{rc_rank}}_{{rc_variant}}/summary.json",
    params:
        out=lambda wc: f"{RC}/k{wc.rc_kernel}_{wc.rc_rank}_{wc.rc_variant}",
        rank=lambda wc: wc.rc_rank.removeprefix("r"),
        strategy=f"--strategy-file {RC}/strategy.json" if RC_STRATEGY else "",
        settings=RC_HASH,
    threads: RC_THREADS
    resources:
        mem_mb=8000,
        runtime=720,
        gpu=GPU,
    log:
        f"{LOGS}/rankconv/k{{rc_kernel}}_{{rc_rank}}_{{rc_variant}}.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} rankconv --scale {SCALE} --kernel {wildcards.rc_kernel}"
        " --rank {params.rank} --variant {wildcards.rc_variant} {params.strategy}"
        " --out {params.out} > {log} 2>&1"


STUDY_REPORT_INPUTS.extend(expand(f"{RC}/{{config}}/summary.json", config=RC_CONFIGS))
