# The report reads only files under results/<scale>/ and writes reports/<scale>/ plus the DVC
# metrics and plots files of the scale; reports/report.html is a copy of the latest scale's.
# It first refuses, naming the file, any result made with settings other than the current
# ones of its step (lowrank.workflow_helpers.check_fresh).
localrules:
    report,
    publish_report,


REPORT_INPUTS = [
    *expand(
        f"{FCN}/{{config}}/{{name}}",
        config=FCN_CONFIGS,
        name=["summary.json", "sweep.csv", "spectra.json"],
    ),
    f"{FCN}/flops.csv",
    *STUDY_REPORT_INPUTS,
]


rule report:
    input:
        results=REPORT_INPUTS,
        claims="claims.yaml",
        metric_schema="workflow/schemas/metrics.yaml",
        stamp=STAMP["report.report"],
    output:
        html=f"reports/{SCALE}/report.html",
        figures=[f for study in REPORT_FIGURES.values() for f in study],
        tables=report(
            directory(f"reports/{SCALE}/tables"),
            patterns=["{name}.csv"],
            caption="../report/tables.rst",
            category=wh.table_category,
        ),
        metrics=f"{RES}/metrics.json",
        plots=f"{RES}/plots/truncation.csv",
    log:
        f"{LOGS}/report.log",
    conda:
        CONDA_ENV
    params:
        lowrank=LOWRANK,
        params=PARAMS,
        out=lambda wc, output: wh.parent(output),
        settings=HASH["report.report"],
    shell:
        "{params.lowrank} report --params {params.params:q} --out {params.out:q}"
        " --inputs {input.results:q} > {log:q} 2>&1"


rule publish_report:
    input:
        f"reports/{SCALE}/report.html",
    output:
        "reports/report.html",
    log:
        f"{LOGS}/publish_report.log",
    conda:
        CONDA_ENV
    shell:
        "(cp {input:q} {output:q}.tmp && mv {output:q}.tmp {output:q}) > {log:q} 2>&1"
