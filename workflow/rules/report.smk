# The report reads only files under results/<scale>/ and writes reports/<scale>/ plus the DVC
# metrics and plots files of the scale; reports/report.html is a copy of the latest scale's.
localrules: report, publish_report


rule report:
    input:
        expand(f"{FCN}/{{config}}/{{name}}", config=FCN_CONFIGS,
               name=["summary.json", "sweep.csv", "spectra.json"]),
        f"{FCN}/flops.csv",
        STUDY_REPORT_INPUTS,
        "claims.yaml",
        "workflow/schemas/metrics.yaml",
    output:
        html=f"reports/{SCALE}/report.html",
        truncation=report(f"reports/{SCALE}/figures/fcn_truncation_curves.png",
                          caption="../report/fcn_truncation.rst", category="LoRITa FCN"),
        spectra=report(f"reports/{SCALE}/figures/fcn_spectra.png",
                       caption="../report/fcn_spectra.rst", category="LoRITa FCN"),
        ledger=report(f"reports/{SCALE}/tables/claims_ledger.csv",
                      caption="../report/claims_ledger.rst", category="Claims ledger"),
        metrics=f"{RES}/metrics.json",
        plots=f"{RES}/plots/truncation.csv",
    params:
        settings=params_hash(
            [BLOCK["lorita_fcn"][k] for k in ("drop_tolerance", "converged_by")]
        ),
    log:
        f"{LOGS}/report.log",
    conda:
        CONDA_ENV
    shell:
        "{LOWRANK} report --scale {SCALE} --out reports/{SCALE} > {log} 2>&1"


rule publish_report:
    input:
        f"reports/{SCALE}/report.html",
    output:
        "reports/report.html",
    shell:
        "cp {input} {output}.tmp && mv {output}.tmp {output}"
