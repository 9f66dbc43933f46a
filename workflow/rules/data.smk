# Dataset downloads run on the submitting host (cluster nodes often have no internet).
localrules:
    fetch_mnist,
    fetch_cifar10,
    fetch_cifar100,


rule fetch_mnist:
    output:
        f"{DATA}/mnist/MANIFEST.json",
    log:
        f"{LOGS}/fetch_mnist.log",
    conda:
        CONDA_ENV
    params:
        lowrank=LOWRANK,
        params=PARAMS,
    shell:
        "{params.lowrank} fetch mnist --params {params.params:q} > {log:q} 2>&1"


rule fetch_cifar10:
    output:
        f"{DATA}/cifar10/MANIFEST.json",
    log:
        f"{LOGS}/fetch_cifar10.log",
    conda:
        CONDA_ENV
    params:
        lowrank=LOWRANK,
        params=PARAMS,
    shell:
        "{params.lowrank} fetch cifar10 --params {params.params:q} > {log:q} 2>&1"


rule fetch_cifar100:
    output:
        f"{DATA}/cifar100/MANIFEST.json",
    log:
        f"{LOGS}/fetch_cifar100.log",
    conda:
        CONDA_ENV
    params:
        lowrank=LOWRANK,
        params=PARAMS,
    shell:
        "{params.lowrank} fetch cifar100 --params {params.params:q} > {log:q} 2>&1"
