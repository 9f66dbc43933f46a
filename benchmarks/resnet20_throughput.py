"""Benchmark (not a test): ResNet20 training throughput per device, and the realized CPU
speedup of truncated ResNet20/VGG16 against their MACs ratio.

    PYTHONPATH=src python benchmarks/resnet20_throughput.py [--threads 2] [--steps 20]

Training throughput: images/s of SGD steps (forward, backward, update) on batches of 128
CIFAR-shaped 3x32x32 tensors (synthetic inputs: speed depends on shapes only), after warm-up,
on the CPU and on every visible CUDA device (bf16/fp16 autocast and channels_last, as
train/loop.py trains there). Realized speedup: full-width ResNet20 (option B) and VGG16,
truncated by LSVT at several retained fractions (random weights: the cost of a realized
model depends only on its ranks), timed against the dense model alternately on the CPU with a
fixed thread count; the MACs ratio is ptflops'. Prints a markdown table and writes it to
benchmarks/results/<device>.md. On a shared machine absolute numbers are inflated; the
ratios are what to compare.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lowrank.measure.flops import ptflops_count  # noqa: E402
from lowrank.measure.speed import speedup  # noqa: E402
from lowrank.methods.truncation import layer_svds, lsvt_ranks, truncate  # noqa: E402
from lowrank.models.registry import build  # noqa: E402
from lowrank.train.loop import autocast_dtype  # noqa: E402


def train_throughput(device: torch.device, steps: int, batch: int = 128) -> float:
    torch.manual_seed(0)
    model = build("resnet20").to(device)
    x = torch.rand(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = autocast_dtype("auto", device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype) if dtype else torch.enable_grad():
            loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def speedup_rows(threads: int, fractions: list[float], batch: int) -> list[dict]:
    rows = []
    x = torch.rand(batch, 3, 32, 32)
    for name in ("resnet20", "vgg16"):
        torch.manual_seed(0)
        dense = build(name).eval()
        dense_macs, dense_params = ptflops_count(dense, (3, 32, 32))
        svds = layer_svds(dense)
        for fraction in fractions:
            compressed = truncate(dense, svds, lsvt_ranks(svds, fraction)).eval()
            macs, params = ptflops_count(compressed, (3, 32, 32))
            timing = speedup(dense, compressed, x, threads=threads, repeats=9)
            rows.append(
                {
                    "model": name,
                    "LSVT retained": f"{fraction:.0%}",
                    "MMACs dense -> compressed": f"{dense_macs / 1e6:.1f} -> {macs / 1e6:.1f}",
                    "params (M)": f"{dense_params / 1e6:.3f} -> {params / 1e6:.3f}",
                    "MACs ratio": f"{dense_macs / macs:.2f}",
                    "realized CPU speedup": f"{timing['speedup']:.2f}",
                    "ms / batch dense, compressed": f"{1000 * timing['dense_s']:.1f}, "
                    f"{1000 * timing['compressed_s']:.1f}",
                }
            )
    return rows


def markdown(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32, help="inference batch for timing")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    devices = [torch.device("cpu")] + [
        torch.device(f"cuda:{i}") for i in range(torch.cuda.device_count())
    ]
    train_rows = []
    for device in devices:
        label = cpu_name() if device.type == "cpu" else torch.cuda.get_device_name(device)
        images = train_throughput(device, args.steps)
        train_rows.append(
            {
                "device": f"{device} ({label})",
                "torch threads": args.threads if device.type == "cpu" else "-",
                "precision": "fp32" if device.type == "cpu" else "autocast bf16/fp16",
                "ResNet20 training images/s (batch 128)": f"{images:.0f}",
            }
        )
    speed = speedup_rows(args.threads, args.fractions, args.batch)
    name = "cuda-" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    slug = re.sub(r"[^a-z0-9]+", "-", f"{name}-{cpu_name()}".lower()).strip("-")[:80]
    text = (
        f"# ResNet20 throughput and realized speedup ({time.strftime('%Y-%m-%d')})\n\n"
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), "
        f"{platform.python_version()}; 1-minute load average at start: {load} "
        f"(the machine is shared: absolute numbers are inflated, compare ratios).\n\n"
        "## Training throughput (synthetic 3x32x32 inputs, SGD)\n\n"
        + markdown(train_rows)
        + f"\n## Realized CPU inference speedup (batch {args.batch}, LSVT, random weights)\n\n"
        + markdown(speed)
    )
    print(text)
    out = ROOT / "benchmarks" / "results" / f"{slug}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
