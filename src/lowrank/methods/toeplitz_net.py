"""The trained 2-conv CNN three ways: PyTorch, NumPy with Toeplitz (rank-n) convolutions, and
NumPy with the naive loop convolution, plus the rank-n truncated PyTorch model.

The NumPy networks run the whole forward pass in NumPy (conv, ReLU, 2x2 max-pool, the two
Linear layers), as the seed's "rank-n" and "regular convolution" test methods do, so their
timings compare a NumPy network with a PyTorch one.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from lowrank.methods.toeplitz import ToeplitzConv2d, naive_conv2d, rank_n_kernel
from lowrank.models.twoconv import CONV_INDICES, FC_INDICES

METHODS = ("torch", "numpy_toeplitz", "naive")


def _np(t: torch.Tensor, dtype) -> np.ndarray:
    return t.detach().cpu().numpy().astype(dtype)


def conv_layers(model: nn.Sequential) -> list[nn.Conv2d]:
    return [model[i] for i in CONV_INDICES]


@torch.no_grad()
def truncate_convs(model: nn.Sequential, rank: int) -> nn.Sequential:
    """A copy whose conv kernel slices are their rank-`rank` SVD truncations."""
    out = copy.deepcopy(model).eval()
    for layer in conv_layers(out):
        kernel = rank_n_kernel(_np(layer.weight, np.float64), rank)
        layer.weight.copy_(torch.from_numpy(kernel).to(layer.weight.dtype))
    return out


def filter_spectra(model: nn.Sequential) -> list[np.ndarray]:
    """Singular values (Cout, Cin, k) of every kernel slice of each conv layer."""
    return [np.linalg.svd(_np(c.weight, np.float64), compute_uv=False) for c in conv_layers(model)]


def _relu_maxpool2(x: np.ndarray) -> np.ndarray:
    """ReLU then 2x2 max-pool (stride 2, floor), as the pooled maximum of four strided views;
    ReLU is applied after pooling, which is the same (max is monotone) on 4x fewer values."""
    h2, w2 = x.shape[2] // 2, x.shape[3] // 2
    x = x[:, :, : 2 * h2, : 2 * w2]
    out = np.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2])
    np.maximum(out, x[:, :, 1::2, 0::2], out=out)
    np.maximum(out, x[:, :, 1::2, 1::2], out=out)
    return np.maximum(out, 0, out=out)


class NumpyNet:
    """The network in NumPy for one input size; `rank=None` with method "naive" keeps the
    exact filters and uses the loop convolution, an integer rank uses Toeplitz products."""

    def __init__(
        self,
        model: nn.Sequential,
        method: str,
        rank: int | None,
        in_hw: tuple[int, int],
        dtype=np.float32,
    ):
        if method not in ("numpy_toeplitz", "naive"):
            raise ValueError(f"unknown NumPy method {method}")
        self.method, self.rank, self.dtype = method, rank, dtype
        self.convs = []
        hw = in_hw
        for conv in conv_layers(model):
            if conv.stride[0] != conv.stride[1] or conv.padding[0] != conv.padding[1]:
                raise ValueError("square stride and padding only")
            weight, bias = _np(conv.weight, dtype), _np(conv.bias, dtype)
            stride, padding = conv.stride[0], conv.padding[0]
            if method == "numpy_toeplitz":
                layer = ToeplitzConv2d.build(weight, bias, rank, hw, stride, padding)
                out_hw = layer.out_hw
            else:
                layer = (weight, bias, stride, padding)
                k = weight.shape[-1]
                out_hw = tuple((n + 2 * padding - k) // stride + 1 for n in hw)
            self.convs.append(layer)
            hw = (out_hw[0] // 2, out_hw[1] // 2)
        self.fcs = [
            (_np(model[i].weight, dtype).T.copy(), _np(model[i].bias, dtype)) for i in FC_INDICES
        ]

    def _conv(self, layer, x: np.ndarray) -> np.ndarray:
        if self.method == "numpy_toeplitz":
            return layer(x)
        weight, bias, stride, padding = layer
        return naive_conv2d(x, weight, bias, stride, padding)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """x (B, C, H, W) -> logits (B, classes)."""
        x = x.astype(self.dtype, copy=False)
        for layer in self.convs:
            x = _relu_maxpool2(self._conv(layer, x))
        x = x.reshape(len(x), -1)
        (w1, b1), (w2, b2) = self.fcs
        return np.maximum(x @ w1 + b1, 0) @ w2 + b2

    def predict(self, x: np.ndarray, chunk: int = 1000) -> np.ndarray:
        """Class predictions in chunks (bounded memory for the stacked Toeplitz products)."""
        return np.concatenate(
            [self.logits(x[i : i + chunk]).argmax(1) for i in range(0, len(x), chunk)]
        )


@torch.no_grad()
def torch_predict(model: nn.Module, x: torch.Tensor, chunk: int = 5000) -> np.ndarray:
    model.eval()
    return torch.cat([model(x[i : i + chunk]).argmax(1) for i in range(0, len(x), chunk)]).numpy()
