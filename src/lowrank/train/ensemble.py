"""Train many seeds of one network, one after another or as a vectorized ensemble (vmap).

Every seed owns its randomness: the weights are initialized under `torch.manual_seed(seed)`
and a private generator (seeded with seed + DATA_SEED_OFFSET) draws its minibatch order and
its dropout masks. The two strategies run the same per-seed math:

- sequential: the plain module, autograd, torch.optim over its parameters;
- vmap: torch.func.stack_module_state stacks the seeds' parameters and buffers (BatchNorm
  running statistics included) along a leading seed axis, torch.func.functional_call under
  torch.vmap runs every seed's forward pass at once, the per-seed losses are summed (so each
  seed's gradient is exactly its own loss's gradient) and torch.optim steps the stacked leaf
  tensors (Adam and SGD are elementwise, so stacking changes nothing per seed).

So a seed's result does not depend on the strategy nor on which seeds share its group, up to
floating-point rounding of batched kernels (tests/test_rankconv_ensemble.py checks this).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state

DATA_SEED_OFFSET = 1_000_003  # init and data streams of one seed never share a sequence
STRATEGIES = ("sequential", "vmap")


@dataclass(frozen=True)
class EnsembleConfig:
    iterations: int
    batch_size: int
    optimizer: str  # adam | sgd
    lr: float
    weight_decay: float
    momentum: float  # sgd only
    eval_every: int  # curve checkpoints, in iterations
    eval_images: int  # the fixed test subset the curves are evaluated on (the first images)
    train_eval_images: int  # the fixed training subset for final train accuracy (first images)
    test_images: int | None = None  # final test accuracy on the first n test images (None: all)


@dataclass
class Data:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


class SeedStream:
    """One seed's minibatch order (a fresh permutation per pass) and dropout masks."""

    def __init__(self, seed: int, n: int, device: torch.device):
        self.generator = torch.Generator(device=device).manual_seed(seed + DATA_SEED_OFFSET)
        self.n, self.device = n, device
        self.order = torch.empty(0, dtype=torch.long, device=device)
        self.pos = 0

    def batch(self, size: int) -> torch.Tensor:
        if self.pos + size > len(self.order):  # drop the ragged tail, as DataLoader(drop_last)
            self.order = torch.randperm(self.n, generator=self.generator, device=self.device)
            self.pos = 0
        idx = self.order[self.pos : self.pos + size]
        self.pos += size
        return idx

    def masks(self, p: float, shapes: list[tuple[int, ...]], batch: int) -> tuple:
        keep = 1.0 - p
        return tuple(
            (torch.rand((batch, *s), generator=self.generator, device=self.device) < keep).float()
            / keep
            for s in shapes
        )


def init_model(build: Callable[[], nn.Module], seed: int, device: torch.device) -> nn.Module:
    """The seed's initial network: built under torch.manual_seed(seed) on the CPU."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    return model.to(device)


def _optimizer(cfg: EnsembleConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=False)
    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, foreach=False
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def checkpoints(cfg: EnsembleConfig) -> list[int]:
    """Iterations at which the curves are evaluated (always including the last)."""
    points = list(range(cfg.eval_every, cfg.iterations + 1, cfg.eval_every))
    return points if points and points[-1] == cfg.iterations else [*points, cfg.iterations]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000):
    """(accuracy, mean cross-entropy) in eval mode."""
    was = model.training
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(x), batch):
        logits = model(x[i : i + batch])
        correct += (logits.argmax(1) == y[i : i + batch]).sum().item()
        loss += F.cross_entropy(logits, y[i : i + batch], reduction="sum").item()
    model.train(was)
    return correct / len(x), loss / len(x)


class _Ensemble:
    """Stacked parameters and buffers of a group of seeds, run by functional_call + vmap."""

    def __init__(self, models: list[nn.Module]):
        self.base = copy.deepcopy(models[0]).to("meta")
        params, self.buffers = stack_module_state(models)
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.size = len(models)

        def loss_fn(p, b, x, y, masks):
            logits = functional_call(self.base, (p, b), (x, masks))
            return F.cross_entropy(logits, y), logits

        def logits_fn(p, b, x):
            return functional_call(self.base, (p, b), (x,))

        self._loss = torch.vmap(loss_fn)
        self._logits = torch.vmap(logits_fn, in_dims=(0, 0, None))

    def loss(self, x, y, masks):
        self.base.train()
        return self._loss(self.params, self.buffers, x, y, masks)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, batch: int = 1000):
        self.base.eval()
        correct = torch.zeros(self.size, device=x.device)
        loss = torch.zeros(self.size, device=x.device)
        for i in range(0, len(x), batch):
            logits = self._logits(self.params, self.buffers, x[i : i + batch])
            target = y[i : i + batch].expand(self.size, -1)
            correct += (logits.argmax(-1) == target).sum(1)
            loss += F.cross_entropy(logits.transpose(1, 2), target, reduction="none").sum(1)
        self.base.train()
        return (correct / len(x)).tolist(), (loss / len(x)).tolist()

    def state_dict(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[index].detach().clone() for k, v in {**self.params, **self.buffers}.items()}


def _record(iteration, loss_sum, correct, count, test):
    return {
        "iteration": iteration,
        "train_loss": loss_sum / count,  # running mean over the minibatches since the last point
        "train_acc": correct / (count * 1.0),
        "test_acc": test[0],
        "test_loss": test[1],
    }


def train_group(
    build: Callable[[], nn.Module],
    seeds: list[int],
    data: Data,
    cfg: EnsembleConfig,
    strategy: str,
    device: torch.device,
    log: Callable[[str], None] = print,
    finish: bool = True,
) -> list[dict]:
    """Train `seeds` with `strategy`; one result per seed (history, times, final state).

    finish=False skips the final evaluation (timing probes need only the training seconds).
    """
    if strategy == "sequential":
        return [_train_one(build, seed, data, cfg, device, log, finish) for seed in seeds]
    if strategy == "vmap":
        return _train_vmap(build, seeds, data, cfg, device, log, finish)
    raise ValueError(f"unknown strategy '{strategy}' (known: {', '.join(STRATEGIES)})")


def _dropout(model: nn.Module) -> tuple[float, list]:
    return getattr(model, "dropout_p", 0.0), list(getattr(model, "mask_shapes", []))


def _train_one(build, seed, data, cfg, device, log, finish=True) -> dict:
    model = init_model(build, seed, device)
    model.train()
    optimizer = _optimizer(cfg, model.parameters())
    stream = SeedStream(seed, len(data.train_x), device)
    p, shapes = _dropout(model)
    ex, ey = data.test_x[: cfg.eval_images], data.test_y[: cfg.eval_images]
    history, seconds, points = [], 0.0, set(checkpoints(cfg))
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    count = 0
    _sync(device)
    t0 = time.perf_counter()
    for it in range(1, cfg.iterations + 1):
        idx = stream.batch(cfg.batch_size)
        masks = stream.masks(p, shapes, cfg.batch_size) if shapes else None
        logits = model(data.train_x[idx], masks)
        loss = F.cross_entropy(logits, data.train_y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
        correct += (logits.detach().argmax(1) == data.train_y[idx]).sum()
        count += 1
        if it in points:
            _sync(device)
            seconds += time.perf_counter() - t0
            test = evaluate(model, ex, ey)
            history.append(
                _record(it, loss_sum.item(), correct.item() / cfg.batch_size, count, test)
            )
            loss_sum.zero_(), correct.zero_()
            count = 0
            log(f"seed {seed} it {it}: loss {history[-1]['train_loss']:.4f} test {test[0]:.4f}")
            t0 = time.perf_counter()
    if not finish:
        return {"seed": seed, "group_train_seconds": seconds}
    return _finish(model, seed, [seed], "sequential", history, seconds, 1, data, cfg)


def _train_vmap(build, seeds, data, cfg, device, log, finish=True) -> list[dict]:
    models = [init_model(build, s, device) for s in seeds]
    p, shapes = _dropout(models[0])
    ensemble = _Ensemble(models)
    optimizer = _optimizer(cfg, list(ensemble.params.values()))
    streams = [SeedStream(s, len(data.train_x), device) for s in seeds]
    ex, ey = data.test_x[: cfg.eval_images], data.test_y[: cfg.eval_images]
    n = len(seeds)
    histories: list[list] = [[] for _ in seeds]
    seconds, points = 0.0, set(checkpoints(cfg))
    loss_sum = torch.zeros(n, device=device)
    correct = torch.zeros(n, device=device, dtype=torch.long)
    count = 0
    _sync(device)
    t0 = time.perf_counter()
    for it in range(1, cfg.iterations + 1):
        idx = torch.stack([s.batch(cfg.batch_size) for s in streams])
        drawn = [s.masks(p, shapes, cfg.batch_size) for s in streams] if shapes else None
        masks = tuple(torch.stack(m) for m in zip(*drawn, strict=True)) if drawn else ()
        y = data.train_y[idx]
        losses, logits = ensemble.loss(data.train_x[idx], y, masks)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        loss_sum += losses.detach()
        correct += (logits.detach().argmax(-1) == y).sum(1)
        count += 1
        if it in points:
            _sync(device)
            seconds += time.perf_counter() - t0
            accs, test_losses = ensemble.evaluate(ex, ey)
            sums, hits = loss_sum.tolist(), correct.tolist()
            for k in range(n):
                test = (accs[k], test_losses[k])
                histories[k].append(_record(it, sums[k], hits[k] / cfg.batch_size, count, test))
            loss_sum.zero_(), correct.zero_()
            count = 0
            log(f"seeds {seeds[0]}..{seeds[-1]} it {it}: mean test {sum(accs) / n:.4f}")
            t0 = time.perf_counter()
    if not finish:
        return [{"seed": s, "group_train_seconds": seconds} for s in seeds]
    results = []
    for k, seed in enumerate(seeds):
        model = init_model(build, seed, device)  # a plain module holding seed k's final state
        model.load_state_dict(ensemble.state_dict(k))
        results.append(_finish(model, seed, seeds, "vmap", histories[k], seconds, n, data, cfg))
    return results


def _finish(model, seed, group, strategy, history, seconds, share, data, cfg) -> dict:
    """Final evaluation of one seed: full test set (timed) and the fixed training subset."""
    device = data.test_x.device
    _sync(device)
    t0 = time.perf_counter()
    m = cfg.test_images
    test_acc, test_loss = evaluate(model, data.test_x[:m], data.test_y[:m])
    _sync(device)
    test_seconds = time.perf_counter() - t0
    n = cfg.train_eval_images
    train_acc, train_loss = evaluate(model, data.train_x[:n], data.train_y[:n])
    return {
        "seed": seed,
        "strategy": strategy,
        "group": list(group),
        "history": history,
        # a vmap group trains its seeds together: each seed is charged an equal share
        "train_seconds": seconds / share,
        "group_train_seconds": seconds,
        "test_seconds": test_seconds,
        "test_acc": test_acc,
        "test_loss": test_loss,
        "train_acc": train_acc,
        "train_loss": train_loss,
        "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
