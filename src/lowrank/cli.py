"""The `lowrank` command: validate, fetch, train, sweep, train-model, sweep-model,
pareto-model, flops, toeplitz, bench, rankconv, tucker, report.

Every subcommand reads params.yaml (validated; each `--configfile` merges into it as in
Snakemake, and `validate` also takes `--config`), so the workflow rules pass only what varies
per job. Problems the user can fix
(bad params, missing or corrupt files, a full disk, no permission, too little memory) are
printed as one line (exit status 2), with the traceback only under `--debug`; Ctrl-C ends
with one line (exit status 130).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from lowrank.errors import RESUME, UserError, describe


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    parser.add_argument("--scale", default=None, help="override the params' scale")
    parser.add_argument(
        "--configfile",
        action="append",
        default=[],
        metavar="FILE",
        help="merge FILE into the params as `snakemake --configfile` does (repeatable)",
    )
    parser.add_argument(
        "--step",
        dest="workflow_step",
        metavar="STUDY.STEP",
        default=None,
        help="the workflow step this job runs (study.step), stamped with its settings hash",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")


def _read(args: argparse.Namespace) -> dict:
    """The validated params: --params, then each --configfile, --config, --scale on top."""
    from lowrank.config import load_params, parse_config_args

    overrides = {"scale": args.scale} if args.scale else None
    config = parse_config_args(getattr(args, "overrides", []))
    return load_params(args.params, overrides, args.configfile, config)


def _load(args: argparse.Namespace) -> tuple[dict, dict]:
    from lowrank.config import scale_block

    params = _read(args)
    import torch

    from lowrank.provenance import set_run

    if params["scale"] in params["scales"]:
        set_run(params, params["scales"][params["scale"]], args.workflow_step)

    torch.set_num_threads(params["threads"])
    torch.use_deterministic_algorithms(True)
    return params, scale_block(params)


def _cpu_study(params: dict, study: str) -> None:
    """These studies train on the CPU only: `device: cuda` without a GPU is refused, as the
    CNN and rankconv jobs refuse it, and with one the log says the GPU is not used."""
    if params.get("device") != "cuda":
        return
    from lowrank.train.device import resolve_device

    resolve_device("cuda")  # one line when no GPU is visible
    print(
        f"note: {study} runs on the CPU; device: cuda is used by the CNN, ViT and rankconv studies"
    )


def _out_dir(out: str) -> Path:
    """A job's output folder, checked before any data is loaded or any run trains."""
    from lowrank.preflight import blocker

    path = Path(out)
    reason = None if path.is_dir() else blocker(path)
    if reason:
        raise UserError(f"--out {out}: cannot be the output folder: {reason}")
    return path


def cmd_validate(args: argparse.Namespace) -> None:
    """What the Snakefile checks at plan time, and no more: no torch, no threads started."""
    from lowrank.config import merged_params, parse_config_args
    from lowrank.preflight import plan_checks

    config = parse_config_args(args.overrides)
    if args.scale:
        config["scale"] = args.scale
    params = merged_params(args.params, None, args.configfile, config)
    plan_checks(params, Path.cwd(), args.configfile, config, args.cluster, base=args.params)
    print(f"{args.params}: valid (scale {params['scale']})")


def cmd_fetch(args: argparse.Namespace) -> None:
    params, _ = _load(args)
    data_dir = args.data_dir or params["data_dir"]
    # a missing sources list still accepts a pre-populated data_dir
    sources = params["datasets"].get(args.dataset, {}).get("sources", [])
    if args.dataset == "mnist":
        from lowrank.data.mnist import fetch_mnist

        manifest = fetch_mnist(data_dir, sources)
    else:
        from lowrank.data.cifar import fetch_cifar

        manifest = fetch_cifar(args.dataset, data_dir, sources)
    print(
        f"{manifest['dataset']} ready in {data_dir}/{args.dataset} from {manifest['source']}: "
        f"{manifest['checksum']}"
    )


def cmd_train(args: argparse.Namespace) -> None:
    import torch

    from lowrank.train.lorita_fcn import train_config

    params, block = _load(args)
    _cpu_study(params, "the FCN study")
    torch.set_num_threads(block["lorita_fcn"].get("threads") or params["threads"])
    _check_member(block["lorita_fcn"], "depths", args.depth)
    _check_member(block["lorita_fcn"], "factors", args.factors)
    if args.seed is not None:
        _check_member(block["lorita_fcn"], "seeds", args.seed)
    out = _out_dir(args.out)
    summary = train_config(
        block, args.depth, args.factors, params["data_dir"], out, only_seed=args.seed
    )
    if summary is None:
        print(f"FCN-{args.depth} N={args.factors} seed {args.seed}: runs done; summary waits")
        return
    accs = [r["test_acc"] for r in summary["runs"]]
    print(f"FCN-{args.depth} N={args.factors}: test accuracy {min(accs):.4f}..{max(accs):.4f}")


def cmd_sweep(args: argparse.Namespace) -> None:
    import torch

    from lowrank.sweep.truncation_sweep import sweep_config

    params, block = _load(args)
    torch.set_num_threads(block["lorita_fcn"].get("threads") or params["threads"])
    train_dir = Path(args.train_dir)
    if not (train_dir / "summary.json").is_file():
        raise UserError(f"{train_dir / 'summary.json'}: missing; train this configuration first")
    sweep_config(train_dir, block["lorita_fcn"]["retained_fractions"], params["data_dir"], block)
    print(f"wrote {train_dir / 'sweep.csv'}")


def cmd_flops(args: argparse.Namespace) -> None:
    from lowrank.measure.fcn_table import write_flops_table

    _, block = _load(args)
    write_flops_table(block["lorita_fcn"], Path(args.out))
    print(f"wrote {args.out}")


def _study_out(args: argparse.Namespace, params: dict, study: str) -> Path:
    return Path(args.out or Path(params["results_dir"]) / params["scale"] / study)


def _run_toeplitz(args: argparse.Namespace, actions: list[str]) -> None:
    """Seed 001's steps in one process (data loaded once): train, sweep, bench, in order."""
    params, block = _load(args)
    _cpu_study(params, "the Toeplitz study")
    if "toeplitz" not in block:
        raise UserError(f"params: scale '{params['scale']}' has no 'toeplitz' block")
    cfg = block["toeplitz"]
    out = _study_out(args, params, "toeplitz")
    import torch

    from lowrank.data.images import load_images
    from lowrank.measure.threads import set_blas_threads

    torch.set_num_threads(cfg["threads"])
    set_blas_threads(cfg["threads"])
    splits = load_images(cfg["dataset"], params["data_dir"])
    if "train" in actions:
        from lowrank.train.toeplitz import train_toeplitz

        summary = train_toeplitz(block, splits, out)
        accs = ", ".join(f"{r['test_acc']:.4f}" for r in summary["runs"])
        print(f"2-conv CNN on {summary['dataset_label']}: final test accuracy {accs}")
    if "sweep" in actions:
        from lowrank.sweep.toeplitz_sweep import sweep_toeplitz

        sweep_toeplitz(block, splits, out)
        print(f"wrote {out / 'accuracy.csv'} and {out / 'spectra.csv'}")
    if "bench" in actions:
        from lowrank.measure.toeplitz_bench import bench_toeplitz

        timing = bench_toeplitz(block, splits, out)  # sets its own thread counts
        for _, row in timing[timing["protocol"] == "per_image"].iterrows():
            print(
                f"{row['method']:>15} rank {row['rank']!s:>4}: {row['median_s']:.3f} s per "
                f"{row['images']} images, one at a time ({row['ratio_to_torch']:.2f}x torch)"
            )
        print(f"wrote {out / 'timing.csv'} and {out / 'microbench.csv'}")


def cmd_toeplitz(args: argparse.Namespace) -> None:
    """Seed 001: train the 2-conv CNN (every epoch kept), test every epoch per rank, time."""
    _run_toeplitz(args, args.actions)


def cmd_bench(args: argparse.Namespace) -> None:
    """Timing benchmarks; `lowrank bench toeplitz` times the seed-001 inference methods."""
    _run_toeplitz(args, ["bench"])


def cmd_rankconv(args: argparse.Namespace) -> None:
    from lowrank.train.rankconv import parse_rank, train_config, write_strategy

    params, block = _load(args)
    if "rankconv" not in block:
        raise UserError(f"params: scale '{params['scale']}' has no 'rankconv' block")
    import torch

    torch.set_num_threads(block["rankconv"]["threads"])
    if args.strategy_only:
        record = write_strategy(
            block, params["data_dir"], Path(args.out), device_param=params["device"]
        )
        print(f"strategy {record['strategy']} ({record['how']}) -> {args.out}")
        return
    if args.kernel is None or args.rank is None or args.variant is None:
        raise UserError("rankconv: --kernel, --rank and --variant are required")
    strategy_file = Path(args.strategy_file) if args.strategy_file else None
    summary = train_config(
        block,
        args.kernel,
        parse_rank(args.rank),
        args.variant,
        params["data_dir"],
        _out_dir(args.out),
        strategy_file,
        device_param=params["device"],
    )
    accs = [r["test_acc"] for r in summary["runs"]]
    print(
        f"K={args.kernel} rank={args.rank} {args.variant}: test accuracy "
        f"{min(accs):.4f}..{max(accs):.4f} over {len(accs)} seeds ({summary['dataset_label']})"
    )


def cmd_tucker(args: argparse.Namespace) -> None:
    params, block = _load(args)
    _cpu_study(params, "the Tucker study")
    if "tucker" not in block:
        raise UserError(f"params: scale '{params['scale']}' has no 'tucker' block")
    out = Path(args.out)
    if args.step == "pareto":
        from lowrank.train.tucker_pareto import write_pareto

        write_pareto(block, out.parent, out)
        print(f"wrote {out}")
        return
    if args.network not in block["tucker"]["networks"]:
        raise UserError(f"params: key 'tucker.networks' does not include {args.network!r}")
    from lowrank.train import tucker, tucker_posthoc, tucker_trained

    step = {
        "dense": tucker.train_dense,
        "posthoc": tucker_posthoc.posthoc,
        "trained": tucker_trained.trained,
    }
    step[args.step](block, args.network, params["data_dir"], _out_dir(args.out))
    print(f"tucker {args.step} {args.network}: wrote {out}")


def cmd_report(args: argparse.Namespace) -> None:
    from lowrank.config import find_schema
    from lowrank.report.build import build_report
    from lowrank.workflow_helpers import check_fresh

    params, block = _load(args)
    results = Path(params["results_dir"]) / params["scale"]
    root = find_schema(args.params).parents[2]  # the project (claims.yaml, schemas)
    check_fresh(args.inputs, params, block)
    html = build_report(params, block, results, Path(args.out), root)
    print(f"wrote {html}")


def cmd_train_model(args: argparse.Namespace) -> None:
    from lowrank.train.lorita_models import train_config

    params, block = _load(args)
    _check_study(block, args.study)
    summary = train_config(
        args.study,
        block,
        args.config,
        args.factors,
        params["data_dir"],
        _out_dir(args.out),
        params.get("device", "auto"),
    )
    accs = [r["test_acc"] for r in summary["runs"]]
    print(
        f"{args.study} {args.config} N={args.factors} on {summary['dataset_label']}: "
        f"test accuracy {min(accs):.4f}..{max(accs):.4f}"
    )


def cmd_sweep_model(args: argparse.Namespace) -> None:
    from lowrank.sweep.model_sweep import sweep_config

    params, block = _load(args)
    _check_study(block, args.study)
    train_dir = Path(args.train_dir)
    if not (train_dir / "summary.json").is_file():
        raise UserError(f"{train_dir / 'summary.json'}: missing; train this configuration first")
    sweep_config(args.study, block, train_dir, params["data_dir"], block[args.study]["threads"])
    print(f"wrote {train_dir / 'sweep.csv'}")


def cmd_pareto_model(args: argparse.Namespace) -> None:
    from lowrank.studies import job_names
    from lowrank.sweep.model_pareto import write_pareto

    params, block = _load(args)
    if args.study not in block:
        raise UserError(f"params: the scale has no '{args.study}' block")
    out = Path(args.out)
    write_pareto(out.parent, job_names(args.study, block), block[args.study], out)
    print(f"wrote {out}")


def _check_study(block: dict, study: str) -> None:
    """The study must be in the scale; its jobs use the study's own torch thread count."""
    if study not in block:
        raise UserError(f"params: the scale has no '{study}' block")
    import torch

    torch.set_num_threads(block[study]["threads"])


def _check_member(cfg: dict, key: str, value: int) -> None:
    if value not in cfg[key]:
        raise UserError(f"params: key 'lorita_fcn.{key}' does not include {value}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="lowrank", description=" ".join(__doc__.split("\n\n")[0].split())
    )
    top.add_argument(
        "--configfile",
        dest="global_configfiles",
        action="append",
        default=[],
        metavar="FILE",
        help="as the command's --configfile (the workflow puts it before the command)",
    )
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "validate",
        help="check params.yaml as the workflow's plan does: schema, paths, threads, device, "
        "memory of every training job",
    )
    p.add_argument(
        "--cluster",
        action="store_true",
        help="the run is a cluster submission: threads and device: cuda are the nodes' matter",
    )
    p.add_argument(
        "--config",
        dest="overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="top-level overrides, parsed and merged as `snakemake --config` does",
    )
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("fetch", help="download and verify a dataset")
    p.add_argument("dataset", choices=["mnist", "cifar10", "cifar100"])
    p.add_argument("--data-dir", default=None, help="override the params' data_dir")
    p.set_defaults(func=cmd_fetch)
    p = sub.add_parser("train", help="train every seed and weight decay of one configuration")
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--factors", type=int, required=True, help="LoRITa N")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="train only this seed's runs (every weight decay) and write no summary: a long "
        "run done seed by seed; the job without --seed reuses them",
    )
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("sweep", help="LSVT/GSVT truncation sweep of a trained configuration")
    p.add_argument("--train-dir", required=True)
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser(
        "train-model", help="train every seed and weight decay of one CNN/ViT configuration"
    )
    p.add_argument("--study", required=True, choices=["lorita_cnn", "lorita_vit", "structured"])
    p.add_argument("--config", required=True, help="configuration id, e.g. vgg13_cifar10")
    p.add_argument("--factors", type=int, required=True, help="LoRITa N")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_train_model)
    p = sub.add_parser(
        "sweep-model",
        help="LSVT/GSVT sweep of a trained CNN/ViT (and Tables 3-4's operating point)",
    )
    p.add_argument("--study", required=True, choices=["lorita_cnn", "lorita_vit", "structured"])
    p.add_argument("--train-dir", required=True)
    p.set_defaults(func=cmd_sweep_model)
    p = sub.add_parser("pareto-model", help="collect a CNN/ViT study's realized models")
    p.add_argument("--study", required=True, choices=["lorita_cnn", "lorita_vit", "structured"])
    p.add_argument("--out", required=True, help="results/<scale>/<study>/pareto.csv")
    p.set_defaults(func=cmd_pareto_model)
    p = sub.add_parser("flops", help="FLOPs and parameters of the dense models")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_flops)
    p = sub.add_parser("toeplitz", help="seed 001: train the 2-conv CNN, sweep ranks, time")
    p.add_argument("actions", nargs="+", choices=["train", "sweep", "bench"])
    p.add_argument("--out", default=None, help="default: <results_dir>/<scale>/toeplitz")
    p.set_defaults(func=cmd_toeplitz)
    p = sub.add_parser("bench", help="timing benchmarks (toeplitz: seed 001 inference)")
    p.add_argument("study", choices=["toeplitz"])
    p.add_argument("--out", default=None, help="default: <results_dir>/<scale>/toeplitz")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser(
        "rankconv", help="rank-constrained conv: train every seed of one (K, rank, variant)"
    )
    p.add_argument("--kernel", type=int, default=None)
    p.add_argument("--rank", default=None, help="1..K or 'dense'")
    p.add_argument("--variant", default=None, help="plain | dropout | batchnorm | both")
    p.add_argument("--strategy-file", default=None, help="cached strategy.json (strategy auto)")
    p.add_argument(
        "--strategy-only",
        action="store_true",
        help="only time sequential vs vmap on this device and write the choice to --out",
    )
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_rankconv)
    p = sub.add_parser("tucker", help="Tucker study: dense, post-hoc, trained, pareto steps")
    p.add_argument("step", choices=["dense", "posthoc", "trained", "pareto"])
    p.add_argument("--network", default=None, help="a name of tucker.networks")
    p.add_argument("--out", required=True, help="network folder; for pareto the CSV path")
    p.set_defaults(func=cmd_tucker)
    p = sub.add_parser("report", help="assemble tables, figures and reports/report.html")
    p.add_argument("--out", default="reports")
    p.add_argument(
        "--inputs",
        nargs="*",
        default=[],
        help="results to check first: made with the current settings of their step",
    )
    p.set_defaults(func=cmd_report)
    for action in sub.choices.values():
        _common(action)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.configfile = args.global_configfiles + args.configfile
    try:
        args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print(f"lowrank {args.command}: interrupted; {RESUME}", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for every fault the user can fix; bugs keep theirs
        line = describe(exc)
        if line is None:
            raise
        if args.debug:
            traceback.print_exc()
        print(f"lowrank {args.command}: error: {line}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
