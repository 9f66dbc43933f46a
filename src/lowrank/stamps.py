"""Small stamp files, the only things DVC tracks as stage outputs (`python -m lowrank.stamps`).

DVC deletes and recreates a stage's outputs whenever it cannot restore them from its cache
(e.g. `dvc exp run` on a fresh clone), `persist: true` or not. So the dataset in `data_dir`
and the results under `results/<scale>/` are never DVC outputs; each stage instead ends by
writing a stamp that records what it verified or produced:

- `data`:   stamps/data.json, the verified dataset's files and checksums (from its manifest);
- `study`:  stamps/study.json, every result file of the scale with its sha256;
- `report`: stamps/metrics.json (every study's headline metrics), stamps/accuracy.csv (every
  study's headline accuracy) and stamps/truncation.csv (the FCN truncation curves), the DVC
  metrics and plots.

The stamps are small, deterministic (no timestamps), committed to git (`cache: false`), so
they exist on a fresh clone and `dvc repro --dry` can hash every dependency. If DVC removes a
stamp, rerunning its stage only verifies (fetch) or finds finished jobs (Snakemake) and
rewrites it: nothing is downloaded or retrained.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

from lowrank.atomic import write_json, write_with
from lowrank.errors import UserError

STAMPS = Path("stamps")
# results/<scale>/ files the report writes (not the study): left out of the study stamp.
REPORT_WRITTEN = ("metrics.json", "plots/")
# One headline number per study for `dvc metrics show` / `dvc exp show` (means over every
# row of the metric: seeds, models, configurations); the ledger holds the details.
HEADLINES = {
    "lorita_fcn": ("lorita_fcn.test_acc", "lorita_fcn.min_retained_pct"),
    "lorita_cnn": ("lorita_cnn.test_acc",),
    "lorita_vit": ("lorita_vit.test_acc",),
    "structured": ("structured.acc_after",),
    "toeplitz": ("toeplitz.test_acc",),
    "tucker_posthoc": ("tucker_posthoc.test_acc",),
    "tucker_trained": ("tucker_trained.test_acc",),
    "rankconv": ("rankconv.test_acc",),
}
LEDGER_COUNTS = {"reproduced": "reproduced", "not reproduced": "not_reproduced"}
# Headline accuracies in percent; the accuracy plot shows every study as a fraction.
PERCENT = {"structured.acc_after"}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_stamp(data_dir: Path, dataset: str = "mnist") -> dict:
    """The verified dataset as its manifest names it, without source or fetch time."""
    manifest_path = data_dir / dataset / "MANIFEST.json"
    if not manifest_path.is_file():
        raise UserError(f"{manifest_path}: missing; run `lowrank fetch {dataset}` first")
    manifest = json.loads(manifest_path.read_text())
    return {k: manifest[k] for k in ("dataset", "format", "files", "checksum")}


def study_stamp(results: Path, scale: str) -> dict:
    """Every result file of the scale (relative path -> sha256), the report's own left out."""
    if not results.is_dir():
        raise UserError(f"{results}: no results; the study did not run")
    files = {}
    for path in sorted(p for p in results.rglob("*") if p.is_file()):
        rel = path.relative_to(results).as_posix()
        if rel.startswith(REPORT_WRITTEN) or path.name.startswith("."):
            continue
        files[rel] = sha256(path)
    return {"scale": scale, "results": results.as_posix(), "files": files}


def headline_metrics(measured_csv: Path, ledger_csv: Path | None = None) -> dict:
    """{study: {metric: mean}} for the studies the scale ran, plus the ledger's verdict counts."""
    import pandas as pd

    measured = pd.read_csv(measured_csv)
    out: dict = {}
    for study, metrics in HEADLINES.items():
        for metric in metrics:
            values = measured.loc[measured["metric"] == metric, "value"].dropna()
            if len(values):
                out.setdefault(study, {})[metric.split(".", 1)[1]] = round(float(values.mean()), 6)
    if ledger_csv is not None and ledger_csv.is_file():
        verdicts = pd.read_csv(ledger_csv)["verdict"]
        out["claims"] = {key: int((verdicts == v).sum()) for v, key in LEDGER_COUNTS.items()}
    return out


def accuracy_plot(metrics: dict) -> list[dict]:
    """One row per study: its headline accuracy (the first headline metric) as a fraction."""
    rows = []
    for study, names in HEADLINES.items():
        key = names[0].split(".", 1)[1]
        if key in metrics.get(study, {}):
            value = metrics[study][key] / (100 if names[0] in PERCENT else 1)
            rows.append({"study": study, "metric": names[0], "accuracy": round(value, 6)})
    return rows


def _params(args: argparse.Namespace) -> dict:
    from lowrank.config import load_params

    return load_params(args.params, {"scale": args.scale} if args.scale else None)


def main(argv: list[str] | None = None) -> int:
    top = argparse.ArgumentParser(
        prog="python -m lowrank.stamps", description=__doc__.split("\n")[0]
    )
    top.add_argument("stage", choices=["data", "study", "report"])
    top.add_argument("--params", default="params.yaml")
    top.add_argument("--scale", default=None, help="override the params' scale")
    top.add_argument("--stamps", default=str(STAMPS), help="default: %(default)s")
    args = top.parse_args(argv)
    stamps = Path(args.stamps)
    try:
        params = _params(args)
        scale = params["scale"]
        results = Path(params["results_dir"]) / scale
        if args.stage == "data":
            write_json(stamps / "data.json", data_stamp(Path(params["data_dir"])))
            print(f"wrote {stamps / 'data.json'}")
        elif args.stage == "study":
            stamp = study_stamp(results, scale)
            write_json(stamps / "study.json", stamp)
            print(f"wrote {stamps / 'study.json'}: {len(stamp['files'])} result files")
        else:
            import pandas as pd

            tables = Path("reports") / scale / "tables"
            metrics = headline_metrics(
                tables / "measured_metrics.csv", tables / "claims_ledger.csv"
            )
            write_json(stamps / "metrics.json", metrics)
            frame = pd.DataFrame(accuracy_plot(metrics), columns=["study", "metric", "accuracy"])
            write_with(stamps / "accuracy.csv", lambda p: frame.to_csv(p, index=False))
            plots = results / "plots" / "truncation.csv"
            write_with(stamps / "truncation.csv", lambda p: shutil.copyfile(plots, p))
            print(f"wrote {stamps}/metrics.json, accuracy.csv and truncation.csv")
    except (UserError, FileNotFoundError) as exc:
        print(f"lowrank stamps {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
