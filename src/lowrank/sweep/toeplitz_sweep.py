"""Rank sweep of the Toeplitz study: every saved epoch state, every method, every rank.

As in the seed (Sec. XII), each epoch's model is tested on the test set by PyTorch (the full
filters), by the NumPy network with rank-n Toeplitz convolutions (n = 1..5), and by the NumPy
network with the naive loop convolution; the report averages over epochs as the seed does and
draws the per-epoch curves. The naive network and PyTorch with rank-n kernels are checks
(equal predictions expected), run at every epoch or only the final one (`check_epochs`).
Outputs: accuracy.csv (one row per seed, epoch, split, method, rank) and spectra.csv (the
singular values of every 5x5 kernel slice per epoch), each with a provenance sidecar.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lowrank.atomic import read_json
from lowrank.data.images import ImageSplits, load_images
from lowrank.errors import UserError
from lowrank.methods.toeplitz_net import NumpyNet, filter_spectra, torch_predict, truncate_convs
from lowrank.provenance import stamp, write_csv_with_provenance
from lowrank.train.toeplitz import load_epoch


def read_summary(out: Path) -> dict:
    path = out / "train.json"
    if not path.is_file():
        raise UserError(f"{path}: missing; run `lowrank toeplitz train` first")
    return read_json(path)


def _acc(pred: np.ndarray, y: np.ndarray) -> float:
    return float((pred == y).mean())


def evaluate_epoch(
    model: torch.nn.Sequential,
    ranks: list[int],
    test: tuple[torch.Tensor, torch.Tensor],
    train_subset: tuple[torch.Tensor, torch.Tensor],
    check: bool,
) -> list[dict]:
    """Accuracy rows of one epoch state; `agree` is the share of predictions equal to PyTorch's
    with the same kernels (full filters for naive, rank-n kernels for Toeplitz)."""
    x, y = test
    xn, yn = x.numpy(), y.numpy()
    hw = tuple(x.shape[2:])
    reference = torch_predict(model, x)
    rows = [
        {"split": "test", "method": "torch", "rank": "full", "accuracy": _acc(reference, yn)},
        {
            "split": "train",
            "method": "torch",
            "rank": "full",
            "accuracy": _acc(torch_predict(model, train_subset[0]), train_subset[1].numpy()),
        },
    ]
    if check:
        naive = NumpyNet(model, "naive", None, hw).predict(xn)
        rows.append(
            {
                "split": "test",
                "method": "naive",
                "rank": "full",
                "accuracy": _acc(naive, yn),
                "agree": _acc(naive, reference),
            }
        )
    for rank in ranks:
        pred = NumpyNet(model, "numpy_toeplitz", rank, hw).predict(xn)
        row = {
            "split": "test",
            "method": "numpy_toeplitz",
            "rank": rank,
            "accuracy": _acc(pred, yn),
        }
        if check:
            truncated = torch_predict(truncate_convs(model, rank), x)
            row["agree"] = _acc(pred, truncated)
            rows.append(
                {
                    "split": "test",
                    "method": "torch",
                    "rank": rank,
                    "accuracy": _acc(truncated, yn),
                }
            )
        rows.append(row)
    return rows


def spectra_rows(model: torch.nn.Sequential) -> list[dict]:
    rows = []
    for layer, sigmas in enumerate(filter_spectra(model), start=1):
        for o, c in np.ndindex(sigmas.shape[:2]):
            s = sigmas[o, c]
            rows.append(
                {
                    "layer": layer,
                    "out_channel": o,
                    "in_channel": c,
                    **{f"sigma{i + 1}": float(v) for i, v in enumerate(s)},
                    "rank1_energy": float(s[0] ** 2 / max((s**2).sum(), 1e-30)),
                }
            )
    return rows


def dataset(cfg: dict, data: str | ImageSplits) -> ImageSplits:
    return data if isinstance(data, ImageSplits) else load_images(cfg["dataset"], data)


def sweep_toeplitz(block: dict, data: str | ImageSplits, out: Path, log=print) -> pd.DataFrame:
    """Evaluate every epoch of every seed; write accuracy.csv and spectra.csv under `out`.
    `data` is the data_dir or the already loaded dataset."""
    cfg = block["toeplitz"]
    t0 = time.perf_counter()
    summary = read_summary(out)
    splits = dataset(cfg, data)
    if splits.checksum != summary["dataset_checksum"]:
        raise UserError(f"{out / 'train.json'}: trained on other data; retrain")
    n_test, n_train = cfg["test_images"], cfg["train_acc_images"]
    test = (splits.test_x[:n_test], splits.test_y[:n_test])
    train_subset = (splits.train_x[:n_train], splits.train_y[:n_train])
    rows, spectra = [], []
    for seed in cfg["seeds"]:
        folder = out / summary["run_dirs"][str(seed)]
        for epoch in range(1, cfg["epochs"] + 1):
            model = load_epoch(cfg, splits, folder, epoch)
            check = cfg["check_epochs"] == "all" or epoch == cfg["epochs"]
            key = {"seed": seed, "epoch": epoch}
            rows += [
                {**key, **r} for r in evaluate_epoch(model, cfg["ranks"], test, train_subset, check)
            ]
            spectra += [{**key, **r} for r in spectra_rows(model)]
            log(f"seed {seed} epoch {epoch}: evaluated")
    frame = pd.DataFrame(rows)
    frame.insert(0, "dataset", splits.label)
    frame["images"] = np.where(frame["split"] == "test", len(test[0]), len(train_subset[0]))
    record = stamp(cfg, cfg["seeds"], splits.checksum, time.perf_counter() - t0)
    record["dataset_label"] = splits.label
    write_csv_with_provenance(frame, out / "accuracy.csv", record)
    write_csv_with_provenance(pd.DataFrame(spectra), out / "spectra.csv", record)
    return frame
