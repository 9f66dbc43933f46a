"""Copy the cpu-full report (reports/cpu-full/) to reports/reference/ with its provenance.

PROVENANCE.json records the commit that built the report (from its footer), the commits the
sweeps and summaries record (a "+dirty" one was made from uncommitted edits of that commit),
the params hash of the cpu-full block, the machine, the runs and their training wall time,
so tests/test_reference_report.py can tie the shipped report to
params.yaml. Model weights never leave results/.
    .venv/bin/python benchmarks/publish_reference.py
"""

from __future__ import annotations

import json
import re
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
    html = (src / "report.html").read_text()
    commit = re.search(r"Commit <code>([^<]+)</code>", html).group(1)  # the report's builder
    runs = [run for r in records for run in r["runs"]]
    provenance = {
        "scale": "cpu-full",
        "git_commit": commit,
        "results_commits": sorted(
            {json.loads(p.read_text())["git_commit"] for p in results.glob("*/*.provenance.json")}
            | {r["provenance"]["git_commit"] for r in records}
        ),
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
