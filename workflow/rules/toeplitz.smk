# Seed 001 (post-hoc SVD of 5x5 filters, Toeplitz convolution in NumPy): one training job
# (every seed, every epoch's state kept) and one job that tests every epoch per rank and then
# times the inference methods (what `lowrank bench toeplitz` runs alone), in one process so
# the data load once. Two jobs at every scale.
TOEP = f"{RES}/toeplitz"
TOEP_CFG = BLOCK["toeplitz"]
# Settings of the training job; everything else (ranks, test images, checks, bench) only
# reruns the sweep+bench job.
TOEP_TRAIN_KEYS = ("dataset", "seeds", "channels", "hidden", "epochs", "batch_size", "lr",
                   "weight_decay", "train_subset")
TOEP_TRAIN_HASH = params_hash({k: TOEP_CFG[k] for k in TOEP_TRAIN_KEYS})
TOEP_EVAL_HASH = params_hash({k: v for k, v in TOEP_CFG.items() if k not in TOEP_TRAIN_KEYS})


def toeplitz_data(wildcards):
    """The fetch rule of the study's dataset: MNIST here; CIFAR through its own fetch rule."""
    name = TOEP_CFG["dataset"]
    if name.startswith("mnist"):
        return rules.fetch_mnist.output
    fetch = "fetch_" + name.removesuffix("_gray")  # e.g. fetch_cifar10 for cifar10_gray
    try:
        return getattr(rules, fetch).output
    except Exception:  # not merged yet: the job then needs the data already in data_dir
        return []


rule toeplitz_train:
    input:
        toeplitz_data,
    output:
        f"{TOEP}/train.json",
    params:
        out=TOEP,
        settings=TOEP_TRAIN_HASH,
    threads: TOEP_CFG["threads"]
    resources:
        mem_mb=4000,
        runtime=300,
    log:
        f"{LOGS}/toeplitz_train.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} toeplitz train --scale {SCALE} --out {params.out} > {log} 2>&1"


rule toeplitz_sweep_bench:
    input:
        f"{TOEP}/train.json",
    output:
        accuracy=f"{TOEP}/accuracy.csv",
        spectra=f"{TOEP}/spectra.csv",
        timing=f"{TOEP}/timing.csv",
        microbench=f"{TOEP}/microbench.csv",
    params:
        out=TOEP,
        settings=TOEP_EVAL_HASH,
    threads: max(TOEP_CFG["threads"], TOEP_CFG["bench"]["threads"])
    resources:
        mem_mb=4000,
        runtime=180,
    log:
        f"{LOGS}/toeplitz_sweep_bench.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} toeplitz sweep bench --scale {SCALE} --out {params.out} > {log} 2>&1"


STUDY_REPORT_INPUTS.extend(
    [f"{TOEP}/train.json", *rules.toeplitz_sweep_bench.output]
)
