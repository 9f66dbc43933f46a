"""Memory each training job needs, estimated from its settings before any job starts.

A job that cannot fit its `mem_mb` would otherwise fail only when it allocates (width 10^9:
a torch allocation traceback after validation passed). The estimate is deliberately simple:

  base process (Python + torch) + the dataset in memory (float32, every split)
  + parameters x 4 bytes x 4 (weights, gradients, Adam's two moments), N factors included
  + batch x activations per image x 4 bytes (the output of every layer, which is what
    autograd keeps for backward; gradients are freed layer by layer as backward proceeds)

times the number of models a job trains at once (rankconv's vmap groups). LoRITa's N factors
add N-1 square layers per Linear/Conv (see methods/lorita.py). With `device: cuda` the
activations and optimizer states of the CNN, ViT and rankconv jobs live on the GPU: host
memory then needs the base process, the data and two copies of the weights. No torch
import: the plan must stay fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lowrank.measure.analytic import Op, model_ops
from lowrank.studies import MODEL_STUDIES, configs

BYTES = 4  # float32
# Measured: 673 MB RSS for torch 2.14 (CPU) after one Adam step; an FCN-10, N = 3, width 500,
# batch 256 training job peaked at 1,145 MB RSS where this module estimates 1,148 MB.
BASE_MB = 800
STATES = 4  # weights, gradients, two Adam moments
MB = 1e6
CPU_STUDIES = ("lorita_fcn", "tucker", "toeplitz")  # their drivers build models on the CPU

# `resources: mem_mb` of each study's training rule (workflow/rules/<study>.smk); the rules
# should read it from here so that the check and the request cannot drift apart.
TRAIN_MEM_MB: dict[str, int] = {
    "lorita_fcn": 4000,
    "lorita_cnn": 8000,
    "lorita_vit": 12000,  # paper ViT-L16-H8, N = 3 on a CPU: about 9,000
    "structured": 8000,
    "rankconv": 8000,
    "tucker": 4000,
    "toeplitz": 4000,
}

# (images of every split, values per image, channels, side) of each dataset name as loaded.
_DATASETS: dict[str, tuple[int, int, int, int]] = {
    "mnist": (70_000, 784, 1, 28),
    "mnist32": (70_000, 784 + 1024, 1, 32),  # the 28x28 original and its padded copy
    "cifar10": (60_000, 3072, 3, 32),
    "cifar100": (60_000, 3072, 3, 32),
    "cifar10_gray": (60_000, 3072 + 1024, 1, 32),
}


@dataclass(frozen=True)
class Estimate:
    study: str
    job: str
    params: int  # trained parameters of one model, factors included
    activations: int  # values per image kept for backward
    batch: int
    data_mb: float
    copies: int = 1  # models trained at once (vmap ensembles)

    def mb(self, device: str = "auto") -> float:
        """Host megabytes the job needs on `device` (cuda keeps training state on the GPU;
        the FCN, Tucker and Toeplitz studies run on the CPU whatever `device` says)."""
        weights = self.params * BYTES * self.copies
        if device == "cuda" and self.study not in CPU_STUDIES:
            return BASE_MB + self.data_mb + 2 * weights / MB
        acts = self.batch * self.activations * BYTES * self.copies
        return BASE_MB + self.data_mb + (STATES * weights + acts) / MB


def _data_mb(*names: str | None) -> float:
    sizes = [_DATASETS[n][0] * _DATASETS[n][1] * BYTES / MB for n in names if n in _DATASETS]
    return max(sizes, default=0.0)


def _count(ops: list[Op], n_factors: int = 1, extra_acts: int = 0) -> tuple[int, int]:
    """Parameters and activations per image of `ops` with every conv/Linear as N factors."""
    params = acts = 0
    for op in ops:
        if op.kind in ("conv", "linear"):
            inner = op.cout if op.kind == "conv" else min(op.cin, op.cout)
            params += op.cin * op.kernel**2 * op.cout + (op.cout if op.bias else 0)
            params += (n_factors - 1) * inner * inner
            acts += op.cout * op.positions + (n_factors - 1) * inner * op.positions
        elif op.kind in ("bn", "ln"):
            params += 2 * op.cout
            acts += op.elements
        elif op.kind in ("act", "pool"):
            acts += op.elements
    return params, acts + extra_acts


def fcn_ops(depth: int, width: int, in_features: int = 784, classes: int = 10) -> list[Op]:
    """FCN-L (models/fcn.py): depth-1 hidden Linear + ReLU layers, then the head."""
    ops, d = [], in_features
    for _ in range(depth - 1):
        ops += [Op("linear", cin=d, cout=width, bias=True), Op("act", elements=width)]
        d = width
    return [*ops, Op("linear", cin=d, cout=classes, bias=True)]


def _fcn(block: dict) -> list[Estimate]:
    cfg = block["lorita_fcn"]
    out = []
    for depth in cfg["depths"]:
        ops = fcn_ops(depth, cfg["width"])
        for n in cfg["factors"]:
            params, acts = _count(ops, n)
            batchnorm = 3 * (depth - 1) * cfg["width"] if cfg.get("batchnorm") else 0
            out.append(
                Estimate(
                    "lorita_fcn", f"fcn{depth}_N{n}", params, acts + batchnorm,
                    cfg["batch_size"], _data_mb("mnist"),
                )
            )  # fmt: skip
    return out


def _model_study(study: str, block: dict) -> list[Estimate]:
    cfg = block[study]
    out = []
    for cid, config in configs(study, block).items():
        channels = max(_DATASETS.get(d, (0, 0, 3, 32))[2] for d in (config.dataset,))
        kwargs = {**config.kwargs, "in_channels": channels, "num_classes": 100}
        ops = model_ops(config.model, **kwargs)
        attention = 0
        if config.model == "vit":  # softmax weights and scores: heads x tokens^2 per block
            tokens = (32 // kwargs["patch_size"]) ** 2
            attention = 2 * kwargs["depth"] * kwargs["heads"] * tokens * tokens
        for n in cfg["factors"]:
            params, acts = _count(ops, n, attention)
            data = _data_mb(config.dataset, config.fallback)
            out.append(Estimate(study, f"{cid}_N{n}", params, acts, cfg["batch_size"], data))
    return out


def _rankconv(block: dict) -> list[Estimate]:
    cfg = block["rankconv"]
    _, _, c, size = _DATASETS.get(cfg["dataset"], (0, 0, 3, 32))
    kernel = max(g["kernel"] for g in cfg["grid"])
    params = acts = 0
    for widths in cfg["channels"]:
        for width in widths:
            params += c * width * kernel * kernel + 2 * width
            acts += 3 * width * size * size  # conv, batch norm, ReLU
            c = width
        size = max(1, size // 2)
    params += c * size * size * cfg["hidden"] + cfg["hidden"] * 11
    acts += 2 * cfg["hidden"] + 10
    copies = 1 if cfg["strategy"] == "sequential" else min(cfg["group_size"], cfg["seeds"])
    return [
        Estimate(
            "rankconv", f"k{kernel}", params, acts, cfg["batch_size"],
            _data_mb(cfg["dataset"]), copies,
        )
    ]  # fmt: skip


def _tucker(block: dict) -> list[Estimate]:
    cfg = block["tucker"]
    _, _, c, size = _DATASETS.get(cfg["dataset"], (0, 0, 3, 32))
    out = []
    for network in cfg["networks"]:
        if network == "tutorial_cnn":
            side = ((size - 4) // 2 - 4) // 2
            ops = [
                Op("conv", cin=c, cout=6, kernel=5, positions=(size - 4) ** 2, bias=True),
                Op("act", elements=6 * (size - 4) ** 2),
                Op("conv", cin=6, cout=16, kernel=5, positions=((size - 4) // 2 - 4) ** 2),
                Op("linear", cin=16 * side * side, cout=120, bias=True),
                Op("linear", cin=120, cout=84, bias=True),
                Op("linear", cin=84, cout=10, bias=True),
            ]
        else:
            try:
                ops = model_ops(network, in_channels=c, image_size=size)
            except ValueError:
                continue  # an unknown network is the tucker job's own one-line error
        params, acts = _count(ops)
        out.append(
            Estimate("tucker", network, params, acts, cfg["batch_size"], _data_mb(cfg["dataset"]))
        )
    return out


def _toeplitz(block: dict) -> list[Estimate]:
    """The bench job's largest array work: the seed's float64 (m x k) @ (k x n) matmul and
    its n x n loop convolution (the 2-conv net itself is tiny)."""
    cfg = block["toeplitz"]
    m, k, n = cfg["bench"]["microbench"]["matmul"]
    side = cfg["bench"]["microbench"]["naive_size"]
    values = m * k + k * n + m * n + 2 * side * side  # float64: 2 x 4 bytes each
    data = _data_mb(cfg["dataset"])
    return [Estimate("toeplitz", "bench", 0, values, 2, data)]


def estimates(block: Mapping) -> list[Estimate]:
    """One estimate per training job of a scale block (Toeplitz: its benchmark job)."""
    block = dict(block)
    out = _fcn(block) if "lorita_fcn" in block else []
    for study in MODEL_STUDIES:
        if study in block:
            out += _model_study(study, block)
    if "rankconv" in block:
        out += _rankconv(block)
    if "tucker" in block:
        out += _tucker(block)
    if "toeplitz" in block:
        out += _toeplitz(block)
    return out


def over_budget(
    block: Mapping, device: str = "auto", mem_mb: Mapping[str, int] = TRAIN_MEM_MB
) -> Estimate | None:
    """The job furthest over its rule's `mem_mb` (by ratio), or None when every job fits."""
    over = [(e.mb(device) / mem_mb[e.study], e) for e in estimates(block) if e.study in mem_mb]
    over = [(ratio, e) for ratio, e in over if ratio > 1]
    return max(over, key=lambda pair: pair[0])[1] if over else None


def describe(estimate: Estimate, device: str, mem_mb: Mapping[str, int] = TRAIN_MEM_MB) -> str:
    return (
        f"job {estimate.job} would need about {estimate.mb(device):,.0f} MB "
        f"({estimate.params / 1e6:,.1f} M parameters, batch {estimate.batch}, {device}) but "
        f"its rule requests mem_mb={mem_mb[estimate.study]}"
    )
