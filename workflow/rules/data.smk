# Dataset downloads run on the submitting host (cluster nodes often have no internet).
localrules: fetch_mnist


rule fetch_mnist:
    output:
        f"{DATA}/mnist/MANIFEST.json",
    log:
        f"{LOGS}/fetch_mnist.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} fetch mnist --scale {SCALE} > {log} 2>&1"
