# Tucker decomposition (seeds 002 and 003), per network of `tucker.networks`: train the dense
# network (all seeds in one job) -> post-hoc Tucker-2 + fine-tuning, and the Tucker-factorized
# network trained from scratch -> one Pareto table. 3 jobs per network plus one.
TUCKER = f"{RES}/tucker"
TCFG = BLOCK["tucker"]
# Each step's rerun trigger: the settings it depends on (a new timing setting reruns only the
# measuring steps, a new rank rule only the post-hoc step).
from lowrank.train.tucker_keys import DENSE_KEYS, POSTHOC_KEYS, TRAINED_KEYS  # noqa: E402

TUCKER_DENSE_HASH = params_hash({k: TCFG[k] for k in DENSE_KEYS + ("seeds",)})
TUCKER_POSTHOC_HASH = params_hash({k: TCFG[k] for k in POSTHOC_KEYS})
TUCKER_TRAINED_HASH = params_hash({k: TCFG[k] for k in TRAINED_KEYS})


def tucker_data(dataset):
    """The output of the fetch rule of `dataset` (mnist32 -> fetch_mnist, cifar10_gray ->
    fetch_cifar10); none where no such rule is included (load_images then names the gap)."""
    base = "mnist" if dataset.startswith("mnist") else dataset.removesuffix("_gray")
    try:
        return getattr(rules, f"fetch_{base}").output
    except Exception:  # Snakemake raises its own error type for an unknown rule
        return []


TUCKER_DATA = tucker_data(TCFG["dataset"])

wildcard_constraints:
    network=r"[A-Za-z0-9_\-]+",


# VGG16's post-hoc rank search (up to 128 evaluations per layer) makes paper jobs long.
TUCKER_RUNTIME = 1440 if SCALE == "paper" else 240


rule tucker_dense:
    input:
        TUCKER_DATA,
    output:
        f"{TUCKER}/{{network}}/dense.json",
    params:
        out=lambda wc: f"{TUCKER}/{wc.network}",
        settings=TUCKER_DENSE_HASH,
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=TUCKER_RUNTIME,
        gpu=GPU,
    log:
        f"{LOGS}/tucker_dense/{{network}}.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} tucker dense --scale {SCALE} --network {wildcards.network}"
        " --out {params.out} > {log} 2>&1"


rule tucker_posthoc:
    input:
        f"{TUCKER}/{{network}}/dense.json",
    output:
        f"{TUCKER}/{{network}}/posthoc.json",
    params:
        out=lambda wc: f"{TUCKER}/{wc.network}",
        settings=TUCKER_POSTHOC_HASH,
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=TUCKER_RUNTIME,
        gpu=GPU,
    log:
        f"{LOGS}/tucker_posthoc/{{network}}.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} tucker posthoc --scale {SCALE} --network {wildcards.network}"
        " --out {params.out} > {log} 2>&1"


rule tucker_trained:
    input:
        f"{TUCKER}/{{network}}/dense.json",
    output:
        f"{TUCKER}/{{network}}/trained.json",
    params:
        out=lambda wc: f"{TUCKER}/{wc.network}",
        settings=TUCKER_TRAINED_HASH,
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=TUCKER_RUNTIME,
        gpu=GPU,
    log:
        f"{LOGS}/tucker_trained/{{network}}.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} tucker trained --scale {SCALE} --network {wildcards.network}"
        " --out {params.out} > {log} 2>&1"


rule tucker_pareto:
    input:
        expand(f"{TUCKER}/{{network}}/{{step}}.json", network=TCFG["networks"],
               step=["posthoc", "trained"]),
    output:
        f"{TUCKER}/pareto.csv",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        f"{LOGS}/tucker_pareto.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} tucker pareto --scale {SCALE} --out {output} > {log} 2>&1"


STUDY_REPORT_INPUTS.extend(
    expand(f"{TUCKER}/{{network}}/{{step}}.json", network=TCFG["networks"],
           step=["dense", "posthoc", "trained"])
    + [f"{TUCKER}/pareto.csv"]
)
