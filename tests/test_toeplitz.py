"""Seed 001: the extended-slide (Toeplitz) convolution equals torch's conv2d, the NumPy network
equals the PyTorch one, per-epoch training is resumable, and the report section reads what the
sweep and bench write."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO

from lowrank.config import read_yaml
from lowrank.data.images import ImageSplits
from lowrank.measure.threads import set_blas_threads
from lowrank.measure.toeplitz_bench import bench_toeplitz
from lowrank.methods import toeplitz as tz
from lowrank.methods.toeplitz_net import NumpyNet, _relu_maxpool2, truncate_convs
from lowrank.models.registry import build as build_model
from lowrank.report import ledger
from lowrank.report.sections import toeplitz as section
from lowrank.sweep.toeplitz_sweep import sweep_toeplitz
from lowrank.train import toeplitz as train_tz
from lowrank.train.loop import TrainConfig, train


def conv_ref(x, w, b, stride=1, padding=0):
    return F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride, padding).numpy()


# (batch, in channels, out channels, height, width, stride, padding)
LAYERS = [(3, 2, 4, 13, 14, 1, 0), (2, 3, 5, 12, 12, 2, 1), (4, 1, 1, 32, 32, 1, 0)]


@pytest.mark.parametrize("rank", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("shape", LAYERS)
def test_toeplitz_layer_equals_conv2d_of_the_rank_n_kernel(rank, shape):
    b, cin, cout, h, w, stride, padding = shape
    rng = np.random.default_rng(rank)
    x = rng.standard_normal((b, cin, h, w))
    weight, bias = rng.standard_normal((cout, cin, 5, 5)), rng.standard_normal(cout)
    out = tz.toeplitz_conv2d(x, weight, bias, rank, stride, padding)
    ref = conv_ref(x, tz.rank_n_kernel(weight, rank), bias, stride, padding)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-11)
    if rank == 5:  # a 5x5 filter has rank at most 5: the original convolution, exactly
        np.testing.assert_allclose(out, conv_ref(x, weight, bias, stride, padding), atol=1e-11)
    else:  # and a lower rank really is an approximation
        assert np.abs(out - conv_ref(x, weight, bias, stride, padding)).max() > 1e-3


@pytest.mark.parametrize("shape", LAYERS)
def test_naive_loop_equals_conv2d(shape):
    b, cin, cout, h, w, stride, padding = shape
    rng = np.random.default_rng(1)
    x = rng.standard_normal((b, cin, h, w))
    weight, bias = rng.standard_normal((cout, cin, 5, 5)), rng.standard_normal(cout)
    out = tz.naive_conv2d(x, weight, bias, stride, padding)
    np.testing.assert_allclose(out, conv_ref(x, weight, bias, stride, padding), atol=1e-11)


def test_paper_formula_single_filter_and_conv_reg():
    """B = sum_i f_i*^T A g_i* for one image and filter, and the seed's conv_reg, vs conv2d."""
    rng = np.random.default_rng(2)
    a, filt = rng.standard_normal((11, 9)), rng.standard_normal((5, 5))
    for rank in range(1, 6):
        f, g = tz.svd_factors(filt, rank)
        ref = conv_ref(a[None, None], (f @ g)[None, None], np.zeros(1))[0, 0]
        np.testing.assert_allclose(tz.toeplitz_conv2d_single(a, f, g), ref, atol=1e-12)
    ref = conv_ref(a[None, None], filt[None, None], np.zeros(1))[0, 0]
    np.testing.assert_allclose(tz.conv_reg(filt, a), ref, atol=1e-12)


def test_extended_slide_matrix_layout():
    v = np.array([1.0, 2.0, 3.0])
    m = tz.extended_slide(v, 6)
    assert m.shape == (6, 4)
    for j in range(4):
        np.testing.assert_array_equal(m[:, j], np.r_[np.zeros(j), v, np.zeros(3 - j)])
    strided = tz.extended_slide(v, 7, stride=2)
    assert strided.shape == (7, 3)
    np.testing.assert_array_equal(strided[2:5, 1], v)
    assert strided.sum() == 3 * v.sum()


def test_svd_truncation_is_eckart_young():
    """Errors shrink with the rank and equal the discarded singular values (Frobenius)."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3, 5, 5))
    s = np.linalg.svd(w, compute_uv=False)
    for rank in range(1, 6):
        err = np.linalg.norm(w - tz.rank_n_kernel(w, rank), axis=(-2, -1))
        np.testing.assert_allclose(err, np.sqrt((s[..., rank:] ** 2).sum(-1)), atol=1e-12)
    with pytest.raises(ValueError):
        tz.svd_factors(w, 6)


def small_net(channels=(2, 3), size=16, seed=0):
    torch.manual_seed(seed)
    return build_model("twoconv", channels=channels, hidden=20, image_size=size).eval()


@pytest.mark.parametrize("channels,size", [((1, 1), 32), ((2, 3), 28)])
def test_numpy_network_equals_pytorch(channels, size):
    model = small_net(channels, size)
    x = torch.rand(7, 1, size, size)
    with torch.no_grad():
        full = model(x).numpy()
        for rank in range(1, 6):
            net = NumpyNet(model, "numpy_toeplitz", rank, (size, size))
            ref = truncate_convs(model, rank)(x).numpy()
            np.testing.assert_allclose(net.logits(x.numpy()), ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ref, full, rtol=1e-4, atol=1e-5)  # rank 5 = the filters
        naive = NumpyNet(model, "naive", None, (size, size)).logits(x.numpy())
        np.testing.assert_allclose(naive, full, rtol=1e-4, atol=1e-5)


def test_relu_maxpool_equals_torch_on_odd_sizes():
    x = torch.randn(2, 3, 7, 9)
    ref = F.max_pool2d(F.relu(x), 2, 2).numpy()
    np.testing.assert_array_equal(_relu_maxpool2(x.numpy()), ref)


def test_blas_threads_are_set_and_read_back():
    assert "1 thread(s)" in set_blas_threads(1)


def synthetic_splits(n_train=192, n_test=120, size=16, seed=0) -> ImageSplits:
    """Learnable random images (class = brightest quadrant), labelled as what they are."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        x = torch.rand(n, 1, size, size, generator=g) * 0.3
        y = torch.randint(0, 4, (n,), generator=g)
        half = size // 2
        for k in range(4):
            r, c = divmod(k, 2)
            x[y == k, :, r * half : (r + 1) * half, c * half : (c + 1) * half] += 0.7
        return x, y

    return ImageSplits(
        "synthetic", "synthetic quadrant images (test data, not real)", "sha256:none", 4,
        *make(n_train), *make(60), *make(n_test),
    )  # fmt: skip


def tiny_cfg(tmp_epochs=3) -> dict:
    return {
        "dataset": "synthetic",
        "seeds": [0],
        "channels": [1, 1],
        "hidden": 16,
        "epochs": tmp_epochs,
        "batch_size": 64,
        "lr": 1e-2,
        "weight_decay": 0.0,
        "train_subset": None,
        "ranks": [1, 2, 3, 4, 5],
        "test_images": None,
        "train_acc_images": 100,
        "check_epochs": "all",
        "threads": 1,
        "bench": {
            "threads": 1,
            "repeats": 2,
            "warmup_images": 5,
            "chunk": 50,
            "per_image_images": 40,
            "naive_images": 4,
            "microbench": {"naive_size": 12, "matmul": [20, 10, 20]},
        },
    }


def states_equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_epoch_states_equal_one_uninterrupted_run_and_resume_after_a_crash(tmp_path, monkeypatch):
    cfg, splits = tiny_cfg(), synthetic_splits()
    folder = tmp_path / "run"
    for epochs in (1, 3):  # what loop.train gives without any interruption
        model, _ = train(
            lambda: train_tz.build_model(cfg, splits),
            TrainConfig(epochs, 64, cfg["lr"], 0.0, 0),
            (splits.train_x, splits.train_y),
            (splits.val_x, splits.val_y),
            log=lambda m: None,
        )
        if epochs == 1:
            first = copy.deepcopy(model.state_dict())
        else:
            last = model.state_dict()
    real_write = train_tz.write_with

    def crash_on_last(path, writer):  # killed after the checkpoint, before the last state
        if path.name == "epoch0003.pt":
            raise KeyboardInterrupt
        real_write(path, writer)

    monkeypatch.setattr(train_tz, "write_with", crash_on_last)
    with pytest.raises(KeyboardInterrupt):
        train_tz.train_seed(cfg, splits, folder, 0, log=lambda m: None)
    assert (folder / "checkpoint.pt").is_file() and not (folder / "run.json").exists()
    monkeypatch.setattr(train_tz, "write_with", real_write)
    run = train_tz.train_seed(cfg, splits, folder, 0, log=lambda m: None)
    assert len(run["history"]) == 3 and not (folder / "checkpoint.pt").exists()
    state = lambda e: torch.load(train_tz.epoch_state(folder, e), weights_only=True)  # noqa: E731
    assert states_equal(state(1), first) and states_equal(state(3), last)
    assert not states_equal(state(2), last)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """Train, sweep and bench on synthetic data, as the workflow jobs do (seconds)."""
    out = tmp_path_factory.mktemp("toeplitz") / "toeplitz"
    cfg, splits = tiny_cfg(), synthetic_splits()
    block = {"toeplitz": cfg}
    train_tz.train_toeplitz(block, splits, out, log=lambda m: None)
    sweep_toeplitz(block, splits, out, log=lambda m: None)
    bench_toeplitz(block, splits, out, log=lambda m: None)
    return out, cfg


def test_sweep_checks_agree_and_rank5_is_exact(tiny_study):
    out, cfg = tiny_study
    acc = pd.read_csv(out / "accuracy.csv")
    assert set(acc["epoch"]) == {1, 2, 3}
    assert (acc["agree"].dropna() == 1.0).all() and acc["agree"].notna().sum() == 3 * 6
    test = acc[acc["split"] == "test"].assign(rank=lambda f: f["rank"].astype(str))
    for _, part in test.groupby("epoch"):
        by = dict(
            zip(zip(part["method"], part["rank"], strict=True), part["accuracy"], strict=True)
        )
        assert by[("numpy_toeplitz", "5")] == by[("torch", "full")] == by[("naive", "full")]
    assert (out / "accuracy.csv.provenance.json").is_file()
    spectra = pd.read_csv(out / "spectra.csv")
    assert len(spectra) == 3 * 2 and spectra["rank1_energy"].between(0.2, 1.0).all()


def test_bench_rows_ratios_and_extrapolation(tiny_study):
    out, _ = tiny_study
    timing = pd.read_csv(out / "timing.csv")
    assert len(timing) == 2 * 7 and (timing["median_s"] > 0).all()
    torch_rows = timing[timing["method"] == "torch"]
    assert (torch_rows["ratio_to_torch"] == 1.0).all()
    naive = timing[timing["method"] == "naive"]
    assert (naive["extrapolated"]).all() and (naive["images_timed"] == 4).all()
    per_image = timing[timing["protocol"] == "per_image"]
    assert (per_image["images_timed"] <= 40).all()
    assert (timing["min_s"] <= timing["median_s"]).all()
    assert (timing["median_s"] <= timing["max_s"]).all()
    side = json.loads((out / "timing.csv.provenance.json").read_text())
    assert side["torch_threads"] == 1 and "1 thread(s)" in side["blas_threads"]


def test_section_measured_rows_html_and_ledger(tiny_study, tmp_path):
    out, cfg = tiny_study
    results = out.parent
    sec = section.build(results, cfg, "smoke", tmp_path / "report")
    assert "synthetic quadrant images (test data, not real)" in sec.html
    assert sec.datasets[0].label.startswith("synthetic")
    assert "instead of grayscale CIFAR-10" in sec.scale_note
    m = sec.measured
    means = m[(m["metric"] == "toeplitz.test_acc") & (m["epoch"] == "mean")]
    assert {str(r) for r in means["rank"]} == {"1", "2", "3", "4", "5", "full"}
    exact = means.set_index(["method", means["rank"].astype(str)])["value"]
    assert exact[("numpy_toeplitz", "5")] == exact[("torch", "full")]
    naive_gap = m[(m["metric"] == "toeplitz.acc_drop_vs_torch") & (m["method"] == "naive")]
    assert naive_gap["value"].tolist() == [0.0]
    assert m[m["metric"] == "toeplitz.naive_slowdown"]["value"].iloc[0] > 1
    assert set(m["metric"]) <= set(read_yaml(REPO / "workflow/schemas/metrics.yaml"))
    for name in ("toeplitz_accuracy_per_rank", "toeplitz_timing", "toeplitz_microbench"):
        assert (tmp_path / "report/tables" / f"{name}.csv").is_file()
    assert (tmp_path / "report/figures/toeplitz_rank_curves.png").is_file()
    # every claim of seed 001 evaluates against these rows without error
    metrics = read_yaml(REPO / "workflow/schemas/metrics.yaml")
    claims = [c for c in ledger.load_claims(REPO / "claims.yaml", metrics) if "s001" in c["id"]]
    rows = ledger.ledger(claims, m, metrics, "smoke", "", {})
    assert "has no rule" not in " ".join(rows["reason"])
    got = dict(zip(rows["id"], rows["verdict"], strict=True))
    assert got["s001-s14-naive-acc-equals-torch"] == ledger.IDENTITY  # same kernels
    assert got["s001-s14-rank1-peak-epoch"] == ledger.NOT_RUN  # 3 epochs: no curve claims
    # no run protocol given here: an ordering is checked, never called reproduced
    assert got["s001-s14-time-monotone-in-rank"] in (ledger.HOLDS_REDUCED, ledger.FAILS_REDUCED)


def test_curve_events_find_peak_and_collapse():
    epochs = np.arange(1, 251)
    acc = np.where(epochs <= 50, 0.1 + 0.2 * epochs / 50, 0.3 - 0.2 * (epochs - 50) / 150)
    acc = np.clip(acc, 0.1, None)
    ev = section.curve_events(epochs, acc, chance=0.1)
    assert abs(ev["peak"] - 50) <= 5 and abs(ev["reaches_chance"] - 185) <= 10
    assert ev["decline_points"] == pytest.approx(20, abs=1)
    flat = section.curve_events(epochs, np.full(250, 0.4), chance=0.1)
    assert np.isnan(flat["reaches_chance"]) and flat["decline_points"] == 0


def test_ledger_rank_orderings():
    def rows(values, metric="toeplitz.test_seconds"):
        return pd.DataFrame(
            [
                {"metric": metric, "rank": r, "method": "numpy_toeplitz", "seed": 0, "value": v}
                for r, v in zip(range(1, len(values) + 1), values, strict=True)
            ]
        )

    assert ledger._comparison("increasing_in_rank", rows([1, 2, 3]))[0]
    assert not ledger._comparison("increasing_in_rank", rows([1, 3, 2]))[0]
    decline = "decline_only_at_lowest_rank"
    ok = rows([3.0, 0.5, 0.2], "toeplitz.late_acc_decline")
    assert ledger._comparison(decline, ok)[0]
    assert not ledger._comparison(decline, rows([3.0, 1.5, 0.2], "toeplitz.late_acc_decline"))[0]
    assert not ledger._comparison(decline, rows([0.5, 0.2, 0.1], "toeplitz.late_acc_decline"))[0]
