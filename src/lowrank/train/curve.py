"""Learning curves at iteration resolution without touching the shared training loop.

`CurveProbe` wraps a model for training: every `every` optimizer steps (counted as training-
mode forward passes, one per step in `lowrank.train.loop.train`) it records the wrapped
model's accuracy on a fixed evaluation set. The step count and the curve are the module's
extra state, so they are saved in the loop's checkpoints and survive a resume like the
weights. Evaluation time is recorded too, so training seconds can exclude it.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from lowrank.train import loop


class CurveProbe(nn.Module):
    def __init__(
        self,
        model: nn.Module,
        every: int,
        xy: tuple[torch.Tensor, torch.Tensor],
        batch: int = 500,
    ):
        super().__init__()
        self.model = model
        self.every, self.xy, self.batch = every, xy, batch
        self.steps, self.curve, self.eval_seconds = 0, [], 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            # this forward starts step `steps + 1`: the weights are those after `steps` steps
            if self.every and self.steps and self.steps % self.every == 0:
                t0 = time.perf_counter()
                acc = loop.accuracy(self.model, *self.xy, self.batch)
                self.curve.append({"iteration": self.steps, "acc": acc})
                self.eval_seconds += time.perf_counter() - t0
            self.steps += 1
        return self.model(x)

    def get_extra_state(self) -> dict:
        return {"steps": self.steps, "curve": list(self.curve), "eval_seconds": self.eval_seconds}

    def set_extra_state(self, state: dict) -> None:
        self.steps, self.curve = state["steps"], list(state["curve"])
        self.eval_seconds = state["eval_seconds"]
