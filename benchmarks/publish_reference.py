"""Copy the cpu-full report (reports/cpu-full/) to reports/reference/ with its provenance.

PROVENANCE.json records the commit and params hash the report's results were made with (read
from the results' own provenance, not from the current checkout), the machine, the runs and
their training wall time, so tests/test_reference_report.py can tie the shipped report to
params.yaml. Model weights never leave results/.
    .venv/bin/python benchmarks/publish_reference.py
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    src, dest = REPO / "reports/cpu-full", REPO / "reports/reference"
    results = REPO / "results/cpu-full/lorita_fcn"
    summaries = sorted(results.glob("fcn*_N*/summary.json"))
    if not (src / "report.html").is_file() or len(summaries) != 9:
        raise SystemExit("reports/cpu-full/report.html or a cpu-full summary is missing")
    records = [json.loads(p.read_text()) for p in summaries]
    first = next(r for r in records if r["depth"] == 6 and r["n_factors"] == 1)
    sweep_prov = json.loads((results / "fcn6_N1/sweep.csv.provenance.json").read_text())
    runs = [run for r in records for run in r["runs"]]
    provenance = {
        "scale": "cpu-full",
        "git_commit": sweep_prov["git_commit"],
        "params_hash": first["provenance"]["params_hash"],
        "device": first["provenance"]["device"],
        "versions": first["provenance"]["versions"],
        "dataset_checksum": first["provenance"]["dataset_checksum"],
        "runs": len(runs),
        "train_seconds_total": round(sum(r["train_seconds"] for r in runs), 1),
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    (dest / "PROVENANCE.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"reports/reference/ from {provenance['git_commit']} ({len(runs)} runs)")


if __name__ == "__main__":
    main()
