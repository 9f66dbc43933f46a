"""Seed 001's convolution as matrix products: B = sum_i f_i*^T A g_i* with "extended-slide"
(Toeplitz) matrices built from the SVD factors of each 5x5 filter, in NumPy.

A filter F = sum_i f_i g_i^T (f_i = sigma_i u_i, g_i = v_i, Eckart-Young) cross-correlated with
an image A (the deep-learning "convolution", as torch's conv2d) gives B[p, q] =
sum_i f_i^T A[p:p+k, q:q+k] g_i. Sliding f_i down the columns of a zero matrix gives f_i*
(H x Ho), sliding g_i gives g_i* (W x Wo), and then B = sum_i f_i*^T A g_i* (Sec. VII-VIII).

For a whole layer (Cin -> Cout channels, a batch of images) the sums over ranks i and input
channels c are folded into the contraction axis of two BLAS products: A @ g* for every
(c, o, i) in one matrix product per input channel, then one product per output channel with
the stacked f*^T. No Python loop touches pixels, images or channels.

`naive_conv2d` is the paper's slow baseline (`conv_reg`, a Python loop over output pixels);
it is vectorized over images and channels only, as the paper's is per image and filter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def svd_factors(weight: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank-`rank` factors of every kernel slice: f (..., kh, r) = U S, g (..., r, kw) = V^T.

    `weight` is (Cout, Cin, kh, kw) or one (kh, kw) filter; f @ g is the best rank-r
    approximation of each slice (Eckart-Young). Computed in float64, returned in the weight's
    dtype.
    """
    full = min(weight.shape[-2:])
    if not 1 <= rank <= full:
        raise ValueError(f"rank must be in 1..{full}, got {rank}")
    u, s, vh = np.linalg.svd(weight.astype(np.float64), full_matrices=False)
    f = u[..., :, :rank] * s[..., None, :rank]
    g = vh[..., :rank, :]
    return f.astype(weight.dtype), g.astype(weight.dtype)


def rank_n_kernel(weight: np.ndarray, rank: int) -> np.ndarray:
    """The rank-`rank` SVD truncation of every kernel slice, as a dense kernel."""
    f, g = svd_factors(weight, rank)
    return (f.astype(np.float64) @ g.astype(np.float64)).astype(weight.dtype)


def out_size(n_in: int, k: int, stride: int) -> int:
    if n_in < k:
        raise ValueError(f"input size {n_in} is smaller than the kernel {k}")
    return (n_in - k) // stride + 1


def extended_slide(v: np.ndarray, n_in: int, stride: int = 1) -> np.ndarray:
    """The paper's v*: (..., n_in, n_out), column j holds v in rows j*stride .. j*stride+k-1.

    Works on a stack of vectors (..., k). With stride s only every s-th slide is kept, which is
    exactly a strided convolution.
    """
    k = v.shape[-1]
    n_out = out_size(n_in, k, stride)
    m = np.zeros((*v.shape[:-1], n_in, n_out), dtype=v.dtype)
    rows = np.arange(n_out)[:, None] * stride + np.arange(k)[None, :]  # (n_out, k)
    cols = np.broadcast_to(np.arange(n_out)[:, None], rows.shape)
    m[..., rows, cols] = v[..., None, :]
    return m


def toeplitz_conv2d_single(a: np.ndarray, f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """B = sum_i f_i*^T A g_i* for one image A (H, W) and one filter's factors f (k, r),
    g (r, k): the paper's formula written literally (reference for the batched layer)."""
    out = 0.0
    for i in range(f.shape[-1]):
        fs = extended_slide(f[:, i], a.shape[0])
        gs = extended_slide(g[i, :], a.shape[1])
        out = out + fs.T @ a @ gs
    return out


def _pad(x: np.ndarray, padding: int) -> np.ndarray:
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))


@dataclass
class ToeplitzConv2d:
    """A conv layer (Cin -> Cout, bias, stride, zero padding) whose kernel slices are replaced by
    their rank-n SVD, evaluated as extended-slide matrix products for a fixed input size.

    g_mats (Cin, Wp, Cout*r*Wo): per input channel, the g* of every (output channel, rank)
    side by side. f_mats (Cout, Ho, Cin*r*Hp): per output channel, the f*^T of every
    (input channel, rank) stacked along the contraction axis, so the sum over i and c is one
    matrix product.
    """

    f_mats: np.ndarray
    g_mats: np.ndarray
    bias: np.ndarray
    rank: int
    stride: int
    padding: int
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]

    @classmethod
    def build(
        cls,
        weight: np.ndarray,
        bias: np.ndarray | None,
        rank: int,
        in_hw: tuple[int, int],
        stride: int = 1,
        padding: int = 0,
    ) -> ToeplitzConv2d:
        cout, cin, kh, kw = weight.shape
        hp, wp = in_hw[0] + 2 * padding, in_hw[1] + 2 * padding
        ho, wo = out_size(hp, kh, stride), out_size(wp, kw, stride)
        f, g = svd_factors(weight, rank)  # (O, C, kh, r), (O, C, r, kw)
        fs = extended_slide(np.swapaxes(f, -1, -2), hp, stride)  # (O, C, r, Hp, Ho)
        gs = extended_slide(g, wp, stride)  # (O, C, r, Wp, Wo)
        g_mats = gs.transpose(1, 3, 0, 2, 4).reshape(cin, wp, cout * rank * wo)
        f_mats = fs.transpose(0, 4, 1, 2, 3).reshape(cout, ho, cin * rank * hp)
        b = np.zeros(cout, weight.dtype) if bias is None else np.asarray(bias, weight.dtype)
        return cls(
            np.ascontiguousarray(f_mats),
            np.ascontiguousarray(g_mats),
            b,
            rank,
            stride,
            padding,
            (in_hw[0], in_hw[1]),
            (ho, wo),
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (B, Cin, H, W) -> (B, Cout, Ho, Wo)."""
        b, cin, h, w = x.shape
        if (h, w) != self.in_hw:
            raise ValueError(f"layer built for {self.in_hw} inputs, got {(h, w)}")
        x = _pad(x, self.padding)
        hp = x.shape[2]
        cout, ho, _ = self.f_mats.shape
        wo = self.out_hw[1]
        # Stage 1, A g*: one (B*Hp, Wp) @ (Wp, Cout*r*Wo) product per input channel.
        left = np.swapaxes(x, 0, 1).reshape(cin, b * hp, x.shape[3]) @ self.g_mats
        # (C, B, Hp, O, r, Wo) -> (O, [C, r, Hp], [B, Wo]): the contraction axis of stage 2.
        left = left.reshape(cin, b, hp, cout, self.rank, wo).transpose(3, 0, 4, 2, 1, 5)
        left = left.reshape(cout, cin * self.rank * hp, b * wo)
        # Stage 2, f*^T (A g*), summed over ranks and input channels: one product per output.
        out = self.f_mats @ left  # (O, Ho, B*Wo)
        out = out.reshape(cout, ho, b, wo).transpose(2, 0, 1, 3)
        return out + self.bias[None, :, None, None]


def toeplitz_conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    rank: int,
    stride: int = 1,
    padding: int = 0,
) -> np.ndarray:
    """Rank-n separable convolution of a batch x (B, Cin, H, W) with weight (Cout, Cin, k, k)."""
    layer = ToeplitzConv2d.build(weight, bias, rank, x.shape[2:], stride, padding)
    return layer(x)


def naive_conv2d(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """The paper's `conv_reg`: a Python loop over output pixels, each a sum of patch * filter.

    Vectorized over images and channels only (the paper loops per image and per filter too).
    """
    x = _pad(x, padding)
    cout, _, kh, kw = weight.shape
    ho, wo = out_size(x.shape[2], kh, stride), out_size(x.shape[3], kw, stride)
    out = np.empty((x.shape[0], cout, ho, wo), dtype=np.result_type(x, weight))
    for r in range(ho):
        for c in range(wo):
            patch = x[:, :, r * stride : r * stride + kh, c * stride : c * stride + kw]
            out[:, :, r, c] = np.tensordot(patch, weight, axes=([1, 2, 3], [1, 2, 3]))
    if bias is not None:
        out += np.asarray(bias, out.dtype)[None, :, None, None]
    return out


def conv_reg(f: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The seed's `conv_reg` (Sec. IV) verbatim in behaviour: one np.sum per output pixel."""
    m_a, n_a = a.shape
    m_f, n_f = f.shape
    res = np.zeros((m_a - m_f + 1, n_a - n_f + 1))
    for r in range(res.shape[0]):
        for c in range(res.shape[1]):
            res[r, c] = np.sum(a[r : r + m_f, c : c + n_f] * f)
    return res
