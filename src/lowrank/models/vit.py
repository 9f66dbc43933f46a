"""SimpleViT (Beyer et al. 2022, "Better plain ViT baselines", the ViT LoRITa cites).

Patches -> LayerNorm -> Linear -> LayerNorm, fixed 2D sin-cos position embedding, `depth`
pre-norm blocks of multi-head self-attention and an MLP (GELU), a final LayerNorm, mean
pooling over tokens and a Linear head; no class token, no dropout. Query, key, value and
output projections are four separate nn.Linear layers (bias-free, as in SimpleViT), so LoRITa
and truncation treat each as one weight matrix, as the paper does. The head dimension is
dim // heads, so the attention width equals the hidden dimension for every head count.

Attention marks its layers with `gsvt_pool = "attention"`: GSVT ranks them in their own
pool, apart from the MLP/embedding/head Linear layers (the paper manages "attention and fully
connected layers independently").
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lowrank.models.dims import vit_dims


def posemb_sincos_2d(h: int, w: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """(h*w, dim) fixed position embedding of SimpleViT."""
    if dim % 4:
        raise ValueError("ViT dim must be a multiple of 4 for the sin-cos position embedding")
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    omega = 1.0 / temperature ** (torch.arange(dim // 4) / (dim // 4 - 1 or 1))
    y = y.flatten()[:, None] * omega[None, :]
    x = x.flatten()[:, None] * omega[None, :]
    return torch.cat((x.sin(), x.cos(), y.sin(), y.cos()), dim=1).float()


class Attention(nn.Module):
    gsvt_pool = "attention"

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.dim_head = heads, dim // heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.dim_head).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        q, k, v = self._split(self.to_q(x)), self._split(self.to_k(x)), self._split(self.to_v(x))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.dim_head), dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(x.shape)
        return self.to_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        self.attn = Attention(dim, heads)
        self.mlp = FeedForward(dim, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class SimpleViT(nn.Module):
    def __init__(
        self,
        image_size: int,
        patch_size: int,
        num_classes: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_dim: int,
        in_channels: int = 3,
    ):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch {patch_size}")
        if dim % heads:
            raise ValueError(f"ViT dim {dim} is not a multiple of heads {heads}")
        self.patch_size = patch_size
        side = image_size // patch_size
        patch_dim = in_channels * patch_size * patch_size
        self.patch_norm = nn.LayerNorm(patch_dim)
        self.patch_embed = nn.Linear(patch_dim, dim)
        self.embed_norm = nn.LayerNorm(dim)
        self.register_buffer("pos", posemb_sincos_2d(side, side, dim), persistent=False)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(dim, num_classes)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, tokens, p*p*C), patch pixels in (row, column, channel) order."""
        b, c, h, w = x.shape
        p = self.patch_size
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (h // p) * (w // p), p * p * c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed_norm(self.patch_embed(self.patch_norm(self.patches(x)))) + self.pos
        x = self.norm(self.blocks(x))
        return self.head(self.flatten(self.pool(x.transpose(1, 2))))


def vit(
    num_classes: int = 10,
    in_channels: int = 3,
    width: float = 1.0,
    image_size: int = 32,
    patch_size: int = 4,
    depth: int = 8,
    heads: int = 8,
    dim: int = 512,
    mlp_dim: int = 512,
) -> SimpleViT:
    """ViT-L{depth}-H{heads}; `width` scales dim and mlp_dim (quick scales narrow them)."""
    d, m = vit_dims(dim, mlp_dim, heads, width)
    return SimpleViT(image_size, patch_size, num_classes, d, depth, heads, m, in_channels)
