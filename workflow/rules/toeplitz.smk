# Seed 001 (post-hoc SVD of 5x5 filters, Toeplitz convolution in NumPy): one training job
# (every seed, every epoch's state kept) and one job that tests every epoch per rank and then
# times the inference methods (what `lowrank bench toeplitz` runs alone), in one process so
# the data load once. Two jobs at every scale. Settings of the training job are
# workflow_helpers.TOEPLITZ_TRAIN_KEYS; everything else (ranks, test images, checks, bench)
# only reruns the sweep+bench job.
TOEP = f"{RES}/toeplitz"
TOEP_CFG = BLOCK["toeplitz"]


rule toeplitz_train:
    input:
        data=wh.fetch_output(rules, TOEP_CFG["dataset"]),
        stamp=STAMP["toeplitz.train"],
    output:
        f"{TOEP}/train.json",
    log:
        f"{LOGS}/toeplitz_train.log",
    conda:
        CONDA_ENV
    threads: TOEP_CFG["threads"]
    resources:
        mem_mb=4000,
        runtime=300,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        out=lambda wc, output: wh.parent(output),
        settings=HASH["toeplitz.train"],
    shell:
        "{params.lowrank} toeplitz train --params {params.params:q} --step toeplitz.train"
        " --out {params.out:q} > {log:q} 2>&1"


rule toeplitz_sweep_bench:
    input:
        train=f"{TOEP}/train.json",
        stamp=STAMP["toeplitz.eval"],
    output:
        accuracy=f"{TOEP}/accuracy.csv",
        spectra=f"{TOEP}/spectra.csv",
        timing=f"{TOEP}/timing.csv",
        microbench=f"{TOEP}/microbench.csv",
    log:
        f"{LOGS}/toeplitz_sweep_bench.log",
    conda:
        CONDA_ENV
    threads: max(TOEP_CFG["threads"], TOEP_CFG["bench"]["threads"])
    resources:
        mem_mb=4000,
        runtime=180,
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        out=lambda wc, output: wh.parent(output),
        settings=HASH["toeplitz.eval"],
    shell:
        "{params.lowrank} toeplitz sweep bench --params {params.params:q} --step toeplitz.eval"
        " --out {params.out:q} > {log:q} 2>&1"


STUDY_REPORT_INPUTS.extend([f"{TOEP}/train.json", *rules.toeplitz_sweep_bench.output])
REPORT_FIGURES["toeplitz"] = wh.report_figures(report, "toeplitz", SCALE)
