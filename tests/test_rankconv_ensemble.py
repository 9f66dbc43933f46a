"""Many seeds per job: a seed's result is the same alone, in any group, sequential or vmap;
jobs resume finished seeds; `auto` picks a strategy by measuring and caches the choice."""

import json
from dataclasses import replace
from functools import partial

import pytest
import torch

from lowrank.config import load_params, scale_block
from lowrank.errors import UserError
from lowrank.models.rankconv_cnn import rankconv_cnn
from lowrank.train import rankconv as job
from lowrank.train.ensemble import Data, EnsembleConfig, train_group

CPU = torch.device("cpu")
CFG = EnsembleConfig(
    iterations=8,
    batch_size=8,
    optimizer="adam",
    lr=3e-3,
    weight_decay=1e-4,
    momentum=0.0,
    eval_every=4,
    eval_images=40,
    train_eval_images=60,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one thread is faster, and steadier on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()  # learnable labels
    return Data(x[:140], y[:140], x[140:], y[140:])


def _close(a: dict, b: dict) -> None:
    assert a["seed"] == b["seed"]
    for key in a["state"]:
        torch.testing.assert_close(a["state"][key], b["state"][key], rtol=1e-4, atol=1e-4)
    assert abs(a["test_acc"] - b["test_acc"]) <= 1 / 60 + 1e-12
    for ha, hb in zip(a["history"], b["history"], strict=True):
        assert ha["train_loss"] == pytest.approx(hb["train_loss"], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize(
    "variant,rank,optimizer", [("both", 2, "adam"), ("batchnorm", None, "sgd")]
)
def test_a_seed_is_the_same_alone_in_a_group_sequential_or_vmap(data, variant, rank, optimizer):
    build = partial(rankconv_cnn, 3, rank, variant, [[3], [4]], 8, 0.25, 1, 8, 2)
    cfg = replace(CFG, optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0)
    quiet = lambda _: None  # noqa: E731
    sequential = train_group(build, [0, 1, 2], data, cfg, "sequential", CPU, quiet)
    vmapped = train_group(build, [0, 1, 2], data, cfg, "vmap", CPU, quiet)
    regrouped = train_group(build, [2, 1], data, cfg, "vmap", CPU, quiet)
    alone = train_group(build, [1], data, cfg, "sequential", CPU, quiet)
    alone_vmap = train_group(build, [1], data, cfg, "vmap", CPU, quiet)
    for a, b in zip(sequential, vmapped, strict=True):
        _close(a, b)
    _close(sequential[2], regrouped[0])
    for other in (regrouped[1], alone[0], alone_vmap[0]):
        _close(sequential[1], other)
    # the comparison can fail: seeds differ, and batch norm statistics were really tracked
    diff = sequential[0]["state"]["head.1.weight"] - sequential[1]["state"]["head.1.weight"]
    assert diff.abs().max() > 1e-3
    running = [k for k in vmapped[0]["state"] if k.endswith("running_mean")]
    assert running and all(vmapped[0]["state"][k].abs().sum() > 0 for k in running)


def _block(real_block: dict, **overrides) -> dict:
    cfg = dict(real_block["rankconv"])
    cfg.update(
        dataset="mnist",
        grid=[{"kernel": 3, "ranks": [1, "dense"]}],
        variants=["plain"],
        seeds=2,
        iterations=6,
        eval_every=3,
        eval_images=50,
        train_eval_images=100,
        test_images=200,
        channels=[[2], [4]],
        hidden=8,
        strategy="vmap",
        group_size=2,
        probe_iterations=2,
    )
    cfg.update(overrides)
    return {"rankconv": cfg}


@pytest.fixture(scope="module")
def smoke_block():
    from pathlib import Path

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    return scale_block(params, "smoke")


def test_jobs_resume_finished_seeds_and_results_do_not_depend_on_grouping(
    tmp_path, real_mnist_dir, smoke_block
):
    out = tmp_path / "k3_r1_plain"
    lines: list[str] = []
    first = job.train_config(_block(smoke_block), 3, 1, "plain", real_mnist_dir, out, log=print)
    settings = first["run_settings"]
    seed0 = (out / "runs" / settings / "seed0.json").read_text()
    # more seeds: the finished ones are reused as written, only seed 2 trains
    more = _block(smoke_block, seeds=3)
    second = job.train_config(more, 3, 1, "plain", real_mnist_dir, out, log=lines.append)
    assert (out / "runs" / settings / "seed0.json").read_text() == seed0
    assert [r["group"] for r in second["runs"]] == [[0, 1], [0, 1], [2]]
    assert any("1 seeds" in line for line in lines)
    # a killed job's lost group is retrained alone, sequentially, to the same numbers
    (out / "runs" / settings / "seed1.json").unlink()
    seq = _block(smoke_block, seeds=3, strategy="sequential")
    third = job.train_config(seq, 3, 1, "plain", real_mnist_dir, out, log=lambda _: None)
    assert third["runs"][1]["strategy"] == "sequential"
    assert third["runs"][1]["test_acc"] == pytest.approx(first["runs"][1]["test_acc"], abs=0.01)
    for a, b in zip(third["runs"][1]["history"], first["runs"][1]["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset_label"].startswith("MNIST (real data)")
    assert summary["conv_parameters"] == (1 * 2 + 2 * 4) * 2 * 3  # 2 N K per slice
    with pytest.raises(UserError, match="not in the grid"):
        job.train_config(seq, 5, 1, "plain", real_mnist_dir, out)


def test_auto_measures_once_and_jobs_reuse_the_cached_choice(tmp_path, real_mnist_dir, smoke_block):
    block = _block(smoke_block, strategy="auto")
    path = tmp_path / "strategy.json"
    record = job.write_strategy(block, real_mnist_dir, path, log=lambda _: None)
    assert record["strategy"] in ("sequential", "vmap")
    timing = record["seconds_per_seed_iteration"]
    assert record["strategy"] == min(timing, key=timing.get)
    assert record["probe_config"] == "k3_dense_plain"
    summary = job.train_config(
        block, 3, None, "plain", real_mnist_dir, tmp_path / "k3", path, log=lambda _: None
    )
    assert summary["strategy"]["how"].startswith("cached")
    assert {r["strategy"] for r in summary["runs"]} == {record["strategy"]}
    # measured on another device: this job measures for itself
    path.write_text(json.dumps({**record, "device": "cuda (elsewhere)"}))
    cfg = block["rankconv"]
    splits, data = job.load_data(cfg, real_mnist_dir, CPU)
    build = job.builder(cfg, splits, 3, None, "plain")
    again = job.resolve_strategy(cfg, build, data, CPU, path, log=lambda _: None)
    assert again["how"].startswith("measured")


def test_grid_expands_all_ranks_and_rejects_impossible_ones(smoke_block):
    cfg = dict(smoke_block["rankconv"], grid=[{"kernel": 3, "ranks": "all"}], variants=["a"])
    assert job.grid(cfg) == [(3, 1, "a"), (3, 2, "a"), (3, 3, "a"), (3, None, "a")]
    with pytest.raises(UserError, match="rank 4 exceeds kernel 3"):
        job.grid(dict(cfg, grid=[{"kernel": 3, "ranks": [4]}]))
    with pytest.raises(UserError, match="'dense'"):
        job.parse_rank("full")
