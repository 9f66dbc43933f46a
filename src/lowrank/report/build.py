"""Assemble the report of one scale from the files under results/<scale>/ and nothing else."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import jinja2
import pandas as pd

from lowrank.atomic import read_json, write_json, write_text, write_with
from lowrank.config import read_yaml
from lowrank.errors import UserError
from lowrank.provenance import git_commit, versions
from lowrank.report import figures, ledger, pareto, tables
from lowrank.report.comparability import RunProtocol, dataset_label
from lowrank.report.deviations import deviations_table
from lowrank.report.measured import fcn_measurements
from lowrank.report.section import DatasetUse, Section


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path}: missing; run the workflow for this scale first")
    return read_json(path)


def collect(results: Path, cfg: dict) -> tuple[list[dict], pd.DataFrame, dict, pd.DataFrame]:
    """Summaries, pooled sweep rows, spectra and the FLOPs table of the FCN study."""
    study = results / "lorita_fcn"
    summaries, sweeps, spectra = [], [], {}
    for depth in cfg["depths"]:
        for n in cfg["factors"]:
            folder = study / f"fcn{depth}_N{n}"
            summaries.append(_read_json(folder / "summary.json"))
            if not (folder / "sweep.csv").is_file():
                raise UserError(f"{folder / 'sweep.csv'}: missing; run the sweep first")
            sweeps.append(pd.read_csv(folder / "sweep.csv"))
            spectra[(depth, n)] = _read_json(folder / "spectra.json")
    if not (study / "flops.csv").is_file():
        raise UserError(f"{study / 'flops.csv'}: missing; run `lowrank flops` first")
    return (
        summaries,
        pd.concat(sweeps, ignore_index=True),
        spectra,
        pd.read_csv(study / "flops.csv"),
    )


def _spectra_depth(cfg: dict) -> int:
    """The paper's Figure 3 uses FCN-8; fall back to the deepest model run."""
    return 8 if 8 in cfg["depths"] else max(cfg["depths"])


def headline_metrics(t1: pd.DataFrame, summary: pd.DataFrame) -> dict:
    """The numbers `dvc metrics show` prints."""
    out: dict = {}
    for _, row in t1.iterrows():
        out.setdefault(row["model"], {})[f"N{row['N']}_test_acc"] = row["test_acc_mean"]
    for _, row in summary.iterrows():
        head = "" if row.get("head", "truncated") == "truncated" else "_head_kept"
        key = f"N{row['N']}_{row['method']}{head}_min_retained_pct"
        out[row["model"]][key] = row["min_retained_pct"]
    return out


# Each params block beyond lorita_fcn has a report section module, and the metric studies
# (workflow/schemas/metrics.yaml) whose claims it answers.
SECTION_MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "lorita_cnn": ("lowrank.report.sections.lorita_cnn", ("lorita_cnn",)),
    "lorita_vit": ("lowrank.report.sections.lorita_vit", ("lorita_vit",)),
    "structured": ("lowrank.report.sections.structured", ("structured",)),
    "toeplitz": ("lowrank.report.sections.toeplitz", ("toeplitz",)),
    "tucker": ("lowrank.report.sections.tucker", ("tucker_posthoc", "tucker_trained")),
    "rankconv": ("lowrank.report.sections.rankconv", ("rankconv",)),
}
STUDY_TITLES = {
    "lorita_cnn": "LoRITa on CNNs (VGG13, ResNet18; CIFAR-10/100)",
    "lorita_vit": "LoRITa on ViTs (CIFAR-10)",
    "structured": "LoRITa vs structured pruning (ResNet20, VGG16; Tables 3-4)",
    "toeplitz": "Post-hoc SVD of 5x5 filters and the Toeplitz convolution (seed 001)",
    "tucker_posthoc": "Post-hoc Tucker with fine-tuning (seed 002)",
    "tucker_trained": "Tucker-factorized convolution trained from scratch (seed 003)",
    "rankconv": "Rank-constrained convolution training (seed 000)",
}


# The paper's FCN-10 GSVT numbers quoted beside our compression table (from claims.yaml).
ZERO_DROP_CLAIMS = (
    "s004-s51-fcn10-gsvt-lorita-min-retained",
    "s004-s51-fcn10-gsvt-n1-min-retained",
)


FCN_WIDTH = 500  # the width the source lost, chosen in params.yaml: "full size" means this


def fcn_run_protocol(summaries: list[dict], cfg: dict) -> RunProtocol:
    """What the FCN runs did: real MNIST always; full size at width 500 on all 50,000
    training images; converged where the scale states how (params `converged_by`: one
    statement for every model, or one per model, e.g. {fcn6_N1: ...}, the rest under-trained)."""
    s = summaries[0]
    converged = cfg.get("converged_by")
    statement = (
        "; ".join(f"{k}: {v}" for k, v in converged.items())
        if isinstance(converged, dict)
        else converged
    )
    reduced = []
    if s["width"] != FCN_WIDTH:
        reduced.append(f"width {s['width']} instead of {FCN_WIDTH}")
    if s["train_images"] < 50_000:
        reduced.append(f"{s['train_images']} of 50,000 training images")
    return RunProtocol(
        datasets={"mnist": "mnist"},
        full_size=not reduced,
        size_note="; ".join(reduced),
        epochs=min(x["epochs"] for x in summaries),
        converged_by=statement or None,
        seeds=len({r["seed"] for r in s["runs"]}),
        unconverged=tuple(
            {"depth": x["depth"], "n_factors": x["n_factors"]}
            for x in summaries
            if isinstance(converged, dict) and f"fcn{x['depth']}_N{x['n_factors']}" not in converged
        ),
    )


def scale_note(scale: str, cfg: dict, train_images: int) -> str:
    """The protocol difference every verdict at this scale carries."""
    if scale == "paper":
        return ""
    converged = cfg.get("converged_by")
    if isinstance(converged, dict):
        trained = (
            "trained to convergence: "
            + "; ".join(f"{k} ({v})" for k, v in converged.items())
            + "; every other model under-trained"
        )
    elif converged:
        trained = f"trained to convergence ({converged})"
    else:
        trained = "the paper trains to convergence"
    return (
        f"{scale} scale: {cfg['epochs']} epoch(s), {len(cfg['seeds'])} seed(s), weight decay "
        f"{cfg['weight_decays']}, {train_images} training images; {trained}"
    )


def study_sections(
    block: dict, results: Path, scale: str, out: Path
) -> list[tuple[Section, tuple]]:
    """Build the report section of every study this scale runs besides the FCN one."""
    built = []
    for key, (module, metric_studies) in SECTION_MODULES.items():
        if key in block:
            section = importlib.import_module(module).build(results, block[key], scale, out)
            built.append((section, metric_studies))
    return built


def build_report(params: dict, block: dict, results: Path, out: Path, root: Path) -> Path:
    t0 = time.perf_counter()
    cfg = block["lorita_fcn"]
    summaries, sweep, spectra, flops = collect(results, cfg)
    sections = study_sections(block, results, params["scale"], out)
    metric_schema = read_yaml(root / "workflow/schemas/metrics.yaml")
    claims = ledger.load_claims(root / "claims.yaml", metric_schema)
    measured = pd.concat(
        [fcn_measurements(summaries, sweep, spectra, cfg["drop_tolerance"])]
        + [s.measured for s, _ in sections if len(s.measured)],
        ignore_index=True,
    )
    note = scale_note(params["scale"], cfg, summaries[0]["train_images"])
    links = {study: "#not-built" for study in {m["study"] for m in metric_schema.values()}}
    notes = {"lorita_fcn": note}
    for section, metric_studies in sections:
        for study in metric_studies:
            links[study] = f"#{section.anchor}"
            notes[study] = section.scale_note
    links["lorita_fcn"] = "#lorita-fcn"
    built = {study for _, studies in sections for study in studies} | {"lorita_fcn"}
    not_built = {k: v for k, v in STUDY_TITLES.items() if k not in built}
    runs = {"lorita_fcn": fcn_run_protocol(summaries, cfg)}
    for section, metric_studies in sections:
        for study in metric_studies:
            runs[study] = section.run
    claims_table = ledger.ledger(
        claims, measured, metric_schema, params["scale"], notes, links, runs
    )
    counts = {v: int((claims_table["verdict"] == v).sum()) for v in ledger.VERDICTS}
    overview = ledger.summary(claims_table)
    deviations = deviations_table()
    checksum = summaries[0]["provenance"]["dataset_checksum"]
    datasets = [DatasetUse("MNIST (real data)", checksum, "LoRITa FCNs (Table 1)")]
    for section, _ in sections:
        datasets += [
            DatasetUse(d.label, d.checksum, f"{section.title}; {d.note}".rstrip("; "))
            for d in section.datasets
        ]
    t1 = tables.table1(summaries, tables.paper_table1(claims), runs["lorita_fcn"])
    summary = tables.compression_summary(sweep, cfg["drop_tolerance"])
    verdicts = tables.verdict_lorita_compresses_better(summary)
    paper_shares = {
        c["selector"]["n_factors"]: c["paper_value"] for c in claims if c["id"] in ZERO_DROP_CLAIMS
    }
    verdicts += tables.head_findings(sweep, summary, paper_shares)

    table_dir, fig_dir = out / "tables", out / "figures"
    named = {
        "claims_ledger": claims_table,
        "measured_metrics": measured,
        "table1_fcn_accuracy": t1,
        "fcn_compression_summary": summary,
        "fcn_flops": flops,
        "deviations": deviations,
    }
    for name, frame in named.items():
        write_with(table_dir / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
        write_text(table_dir / f"{name}.md", tables.to_markdown(frame))

    depth = _spectra_depth(cfg)
    spectra_by_n = {
        n: list(spectra[(depth, n)]["spectra"][str(cfg["seeds"][0])].values())
        for n in cfg["factors"]
    }
    images = {
        "truncation": figures.save(
            figures.truncation_curves(sweep), fig_dir / "fcn_truncation_curves.png"
        ),
        "spectra": figures.save(figures.spectra(spectra_by_n, depth), fig_dir / "fcn_spectra.png"),
    }

    points = pareto.collect(results)
    pareto_view = None
    if len(points):
        best = pareto.front(points)
        named_front = {"pareto_front": best, "pareto_points": points}
        for name, frame in named_front.items():
            write_with(table_dir / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
            write_text(table_dir / f"{name}.md", tables.to_markdown(frame))
        pareto_view = {
            "image": figures.save(pareto.figure(points), fig_dir / "pareto.png"),
            "front": best.to_html(index=False, classes="sortable"),
            "studies": sorted(points["study"].unique()),
        }

    metrics = headline_metrics(t1, summary)
    metrics["claims_ledger"] = {v.split(" (")[0].replace(" ", "_"): n for v, n in counts.items()}
    write_json(results / "metrics.json", metrics)
    common = figures.on_common_axis(sweep)
    plot_frame = (
        common.groupby(["depth", "n_factors", "head", "method", "retained_pct"], as_index=False)[
            "drop_pct"
        ]
        .mean()
        .assign(
            retained_fraction=lambda f: f["retained_pct"] / 100,
            acc_drop=lambda f: f["drop_pct"] / 100,
        )[["depth", "n_factors", "head", "method", "retained_fraction", "acc_drop"]]
    )
    write_with(results / "plots" / "truncation.csv", lambda p: plot_frame.to_csv(p, index=False))

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lowrank", "report/templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    total_train = sum(r["train_seconds"] for s in summaries for r in s["runs"])
    total_train += sum(s.train_seconds for s, _ in sections)
    html = env.get_template("report.html.j2").render(
        ledger=claims_table.to_dict("records"),
        counts=counts,
        overview=overview,
        dataset_label=dataset_label,
        runs=runs,
        study_titles={**STUDY_TITLES, "lorita_fcn": "LoRITa on FCNs (Table 1, Figures 2-3)"},
        deviations=deviations.to_dict("records"),
        n_claims=len(claims_table),
        not_built=not_built,
        sections=[s for s, _ in sections],
        pareto=pareto_view,
        datasets=datasets,
        scale_note=note,
        verdict_class=ledger.VERDICT_CLASS,
        scale=params["scale"],
        cfg=cfg,
        checksum=checksum,
        source="004_412d21979407f75a.txt (LoRITa)",
        train_images=summaries[0]["train_images"],
        table1=t1.to_html(index=False, classes="sortable", na_rep="n/a"),
        summary=summary.to_html(index=False, classes="sortable", na_rep="none"),
        flops=flops.to_html(index=False, classes="sortable"),
        flops_agree=bool(flops["agree"].all()),
        verdicts=verdicts,
        images=images,
        paper_zero_drop={c["id"]: c for c in claims if c["id"] in ZERO_DROP_CLAIMS},
        spectra_depth=depth,
        commit=git_commit(),
        versions=versions(),
        device=summaries[0]["provenance"]["device"],
        params_hash=summaries[0]["provenance"]["params_hash"],
        train_seconds=round(total_train, 1),
        generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        report_seconds=round(time.perf_counter() - t0, 1),
    )
    path = out / "report.html"
    write_text(path, html)
    return path
