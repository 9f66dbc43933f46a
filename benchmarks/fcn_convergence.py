"""Which schedule brings the LoRITa FCNs to their plateau in the fewest epochs (real MNIST)?

Not a test: a measurement that chose the quick scale's FCN schedule (params.yaml comments).
Each line: depth, N, schedule, batch, lr, epochs, weight decay -> validation accuracy after
every epoch and seconds per epoch. Run on an otherwise idle machine, e.g.
    .venv/bin/python benchmarks/fcn_convergence.py --threads 1 --depths 6 --factors 1 \
        --settings onecycle:256:1e-3:12 --out benchmarks/results/fcn_convergence.csv
"""

from __future__ import annotations

import argparse
import itertools
import time

import pandas as pd
import torch

from lowrank.data.mnist import load_mnist
from lowrank.methods.lorita import lorita
from lowrank.models.fcn import fcn
from lowrank.train.loop import TrainConfig, accuracy, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--depths", default="6,10")
    ap.add_argument("--factors", default="1,3")
    ap.add_argument("--settings", default="onecycle:512:2e-3:6")
    ap.add_argument("--weight-decays", default="1e-4")
    ap.add_argument("--batchnorm", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    s = load_mnist(args.data_dir)
    rows = []
    for setting, depth, n, wd in itertools.product(
        args.settings.split(","),
        map(int, args.depths.split(",")),
        map(int, args.factors.split(",")),
        map(float, args.weight_decays.split(",")),
    ):
        schedule, batch, lr, epochs = setting.split(":")
        cfg = TrainConfig(
            int(epochs),
            int(batch),
            float(lr),
            wd,
            0,
            schedule=None if schedule == "constant" else schedule,
        )
        t0 = time.perf_counter()
        model, hist = train(
            lambda d=depth, k=n: lorita(fcn(d, 500, batchnorm=args.batchnorm), k),
            cfg,
            (s.train_x, s.train_y),
            (s.val_x, s.val_y),
            log=lambda _m: None,
        )
        test = accuracy(model, s.test_x, s.test_y)
        for h in hist:
            rows.append(
                {
                    "depth": depth,
                    "n_factors": n,
                    "setting": setting,
                    "weight_decay": wd,
                    "batchnorm": args.batchnorm,
                    "epoch": h["epoch"],
                    "val_acc": h["val_acc"],
                    "train_loss": h["train_loss"],
                    "seconds": h["seconds"],
                    "final_test_acc": test,
                }
            )
        print(
            f"FCN-{depth} N={n} {setting} wd={wd:g}: val "
            + " ".join(f"{h['val_acc']:.4f}" for h in hist)
            + f" | test {test:.4f} | {time.perf_counter() - t0:.0f}s",
            flush=True,
        )
        pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
