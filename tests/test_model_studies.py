"""The CNN/ViT/structured LoRITa studies end to end on tiny real-MNIST runs: training jobs,
sweeps, the Tables 3-4 operating point, pareto rows, report sections, ledger orderings."""

import functools
import json

import pandas as pd
import pytest
import torch

import lowrank.sweep.model_sweep as model_sweep
import lowrank.train.lorita_models as lorita_models
from lowrank.errors import UserError
from lowrank.report import ledger
from lowrank.report.sections import lorita_cnn, lorita_vit, structured
from lowrank.studies import configs, get_config, job_names
from lowrank.sweep.model_pareto import pareto_rows
from lowrank.sweep.model_sweep import select_point, sweep_config
from lowrank.train.lorita_models import train_config


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as the studies' jobs use: tiny models do not gain from a second, and
    on a shared CPU two threads wait on each other (measured 4-8x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


LABEL = "MNIST (real data), zero-padded to 32x32"
COMMON = dict(
    fallback="mnist32",
    threads=1,
    seeds=[0],
    epochs=1,
    batch_size=32,
    optimizer="adam",
    lr=2e-3,
    schedule="constant",
    weight_decays=[1e-4],
    train_subset=64,
    eval_subset=64,
    retained_fractions=[0.3, 1.0],
)
BLOCK = {
    "lorita_cnn": dict(
        COMMON,
        models=["resnet20"],
        datasets=["cifar10"],
        width=0.125,
        factors=[1, 2],
        augment=False,
        drop_tolerance=0.01,
    ),
    "lorita_vit": dict(
        COMMON,
        dataset="cifar10",
        vits=[dict(depth=1, heads=2, augment=False)],
        patch_size=8,
        dim=512,
        mlp_dim=512,
        width=1 / 64,
        factors=[1, 2],
        drop_tolerance=0.01,
    ),
    "structured": dict(
        COMMON,
        models=["resnet20"],
        dataset="cifar10",
        widths={"resnet20": 0.125},
        resnet20_shortcut="B",
        factors=[2, 3],
        augment=False,
        tolerance=1.0,
        finetune_steps=1,
        finetune_lr=1e-4,
        speed_batch=8,
        speed_repeats=1,
    ),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory, real_mnist_dir):
    """results/<scale>/ of all three studies, trained and swept with the study code."""
    root = tmp_path_factory.mktemp("results")

    def cached(c, d):
        return _load(c.dataset, c.fallback, str(d))

    with pytest.MonkeyPatch.context() as mp:  # load MNIST once, not once per job
        mp.setattr(lorita_models, "study_dataset", cached)
        mp.setattr(model_sweep, "study_dataset", cached)
        for study in BLOCK:
            for job in job_names(study, BLOCK):
                config, n = job.rsplit("_N", 1)
                folder = root / study / job
                train_config(
                    study, BLOCK, config, int(n), real_mnist_dir, folder, "cpu", log=lambda _: None
                )
                sweep_config(study, BLOCK, folder, real_mnist_dir, threads=1)
    return root


@functools.lru_cache
def _load(dataset, fallback, data_dir):
    from lowrank.data.images import load_images, resolve_dataset

    return load_images(resolve_dataset(dataset, fallback, data_dir), data_dir)


def test_configurations_and_one_line_errors():
    assert job_names("lorita_vit", BLOCK) == ["vit-l1-h2_cifar10_N1", "vit-l1-h2_cifar10_N2"]
    assert configs("structured", BLOCK)["resnet20_cifar10"].kwargs["shortcut"] == "B"
    with pytest.raises(UserError, match="no configuration 'vgg99_cifar10'"):
        get_config("lorita_cnn", BLOCK, "vgg99_cifar10")


def test_training_records_the_real_dataset_and_is_reused(results, real_mnist_dir):
    folder = results / "lorita_cnn" / "resnet20_cifar10_N2"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["dataset"] == "mnist32" and summary["dataset_label"] == LABEL
    assert summary["requested_dataset"] == "cifar10"
    again = train_config(
        "lorita_cnn", BLOCK, "resnet20_cifar10", 2, real_mnist_dir, folder, "cpu", log=pytest.fail
    )  # every run is reused: nothing trains
    assert again["runs"] == summary["runs"]


def test_sweep_rows_are_exact_at_full_rank_and_counted_like_ptflops(results):
    sweep = pd.read_csv(results / "lorita_vit" / "vit-l1-h2_cifar10_N2" / "sweep.csv")
    full = sweep[sweep["target_fraction"] == 1.0]
    assert (full["test_acc"] == full["base_test_acc"]).all()
    assert sweep["analytic_agrees"].all() and (sweep["attention_macs"] > 0).all()
    assert (sweep[sweep["target_fraction"] < 1]["macs"] < sweep["base_macs"].iloc[0]).all()


def test_operating_point_follows_the_validation_rule(results):
    folder = results / "structured" / "resnet20_cifar10_N2"
    sweep = pd.read_csv(folder / "sweep.csv")
    point = json.loads((folder / "structured.json").read_text())["points"][0]
    ok = sweep[sweep["val_acc"] >= sweep["base_val_acc"] - 0.01 - 1e-12]
    assert point["macs_after"] == ok["macs"].min()
    assert point["finetune_steps"] == 1 and point["realized_speedup"] > 0
    assert point["flops_ratio"] == pytest.approx(point["dense_macs"] / point["macs_after"])


def test_select_point_prefers_fewest_macs_within_tolerance():
    rows = pd.DataFrame(
        {"val_acc": [0.90, 0.895, 0.80], "base_val_acc": 0.90, "macs": [100, 50, 10]}
    )
    assert select_point(rows, 1.0)["macs"] == 50
    assert select_point(rows, 20.0)["macs"] == 10


def test_pareto_rows_name_method_network_and_dataset(results):
    rows = pareto_rows(results / "structured" / "resnet20_cifar10_N3")
    assert set(rows["dataset"]) == {"mnist32"}
    assert rows["network"].iloc[0] == "resnet20 (width x0.125)"
    assert rows["method"].str.startswith("LoRITa N=3").all()
    assert rows["method"].str.contains("fine-tuning").any()


@pytest.mark.parametrize(
    "module,study,metrics",
    [
        (lorita_cnn, "lorita_cnn", {"test_acc", "acc_drop_at_retained", "min_retained_pct"}),
        (lorita_vit, "lorita_vit", {"test_acc", "acc_drop_at_retained", "min_retained_pct"}),
        (
            structured,
            "structured",
            {
                "acc_before",
                "acc_after",
                "mflops_after",
                "flops_drop_pct",
                "mparams_after",
                "params_drop_pct",
                "lorita_row_gap",
                "flops_drop_gap_vs_baseline",
                "params_drop_gap_vs_baseline",
            },
        ),
    ],
)
def test_report_sections(results, tmp_path, module, study, metrics):
    section = module.build(results, BLOCK[study], "smoke", tmp_path)
    assert {m.split(".", 1)[1] for m in section.measured["metric"]} >= metrics
    assert set(section.measured["dataset"]) == {"mnist32"}
    assert LABEL in section.html and section.html.lstrip().startswith("<h2 id=")
    assert [d.label for d in section.datasets] == [LABEL]
    assert "cifar10" in section.scale_note
    assert any(tmp_path.glob("figures/*.png")) and any(tmp_path.glob("tables/*.md"))
    if study == "structured":
        assert "quoted from the paper" in section.html
        table = pd.read_csv(tmp_path / "tables" / "structured_table_resnet20.csv")
        assert table["source"].str.startswith("quoted").sum() == 7  # 2 LoRITa + 5 baselines


def _rows(metric, records):
    return pd.DataFrame([{"metric": metric, "seed": 0, **r} for r in records])


def test_ledger_orderings_of_the_model_studies():
    m = "lorita_vit.min_retained_pct"
    falling = _rows(
        m,
        [
            dict(model="v", method="GSVT", n_factors=n, value=v)
            for n, v in ((1, 30), (2, 20), (3, 10))
        ],
    )
    assert ledger._comparison("decreasing_in_N", falling)[0]
    rising = falling.assign(value=[10, 20, 30])
    assert not ledger._comparison("decreasing_in_N", rising)[0]
    gaps = _rows(
        "structured.lorita_row_gap",
        [dict(model="r", quantity=q, value=v) for q, v in (("a", 1.0), ("b", 2.0))],
    )
    assert ledger._comparison("one_row_dominates", gaps)[0]
    assert not ledger._comparison("one_row_dominates", gaps.assign(value=[1.0, -2.0]))[0]
    best = _rows(
        "structured.flops_drop_gap_vs_baseline",
        [
            dict(model="v", baseline="best_listed", n_factors=n, value=v)
            for n, v in ((2, -1.0), (3, 0.5))
        ],
    )
    assert ledger._comparison("positive_for_some_n", best)[0]
    # lorita_lt_n1 compares N within each model and dataset, never across them
    cnn = _rows(
        "lorita_cnn.min_retained_pct",
        [
            dict(model=mo, dataset="d", method="LSVT", n_factors=n, value=v)
            for mo, n, v in (("a", 1, 50), ("a", 2, 40), ("b", 1, 10), ("b", 2, 30))
        ],
    )
    holds, text = ledger._comparison("lorita_lt_n1", cnn)
    assert "1 of 2" in text and not holds
