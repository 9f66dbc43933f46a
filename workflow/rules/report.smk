# The report reads only files under results/<scale>/ and writes reports/ plus the DVC
# metrics and plots files of the scale.
localrules: report


rule report:
    input:
        expand(f"{FCN}/{{config}}/{{name}}", config=FCN_CONFIGS,
               name=["summary.json", "sweep.csv", "spectra.json"]),
        f"{FCN}/flops.csv",
    output:
        html="reports/report.html",
        metrics=f"{RES}/metrics.json",
        plots=f"{RES}/plots/truncation.csv",
    log:
        f"{LOGS}/report.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} report --scale {SCALE} --out reports > {log} 2>&1"
