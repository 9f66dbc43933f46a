"""Analytic MACs and parameters of every CNN/ViT of the study, from dimensions alone.

Each model is described as a list of operations (convolutions, Linear layers, BatchNorm,
LayerNorm, activations, pools, attention products) computed from its constructor arguments,
independently of the nn.Module code; `count` sums them with ptflops' conventions, so a test
can hold ptflops to it for dense, LoRITa-collapsed and truncated models.

Conventions of ptflops 0.7.4 (module hooks, functional counting off, see flops.py):
convolution = Cout*Cin*K*K per output pixel + Cout per pixel for a bias; Linear = in*out
per token + out per token for a bias; BatchNorm2d = 2 per element (affine); LayerNorm = 1 per
element (ptflops checks an `affine` attribute that LayerNorm does not have); ReLU/GELU = 1
per output element; max/average pools = 1 per input element. Residual additions, the ViT's
patch reshaping, position embedding and softmax are not counted by ptflops.

**Attention products.** ptflops' module hooks cannot see q @ k^T and weights @ v (tensor
operations, not modules). `attention_macs` counts them analytically (2 * tokens^2 * dim per
block); `macs` excludes them (= what ptflops reports) and tables state both.

`conv_linear_macs` is the count that keeps only convolutions and matrix products (weights
and attention products): what ptflops' aten backend reports, and the convention that LoRITa's
Table 3 ResNet20 numbers imply (see models/resnet.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from lowrank.models.dims import CONFIGS, is_thin, scaled, vit_dims


@dataclass(frozen=True)
class Op:
    kind: str  # conv | linear | bn | ln | act | pool | attention
    name: str = ""  # module name of a conv/linear (truncation ranks are keyed by it)
    cin: int = 0  # conv: input channels; linear: in features
    cout: int = 0
    kernel: int = 1
    positions: int = 1  # conv: output pixels; linear: tokens
    bias: bool = False
    elements: int = 0  # bn/ln/act/pool: elements; attention: MACs


@dataclass(frozen=True)
class Counts:
    macs: int  # what ptflops (pytorch backend) counts
    params: int
    attention_macs: int  # attention products, invisible to ptflops' module hooks
    conv_linear_macs: int  # convolutions + Linear + attention products only

    @property
    def total_macs(self) -> int:
        return self.macs + self.attention_macs


def count(ops: list[Op], ranks: dict[str, int] | None = None) -> Counts:
    """Sum MACs and parameters; a conv/linear named in `ranks` is truncated to that rank
    (the two-layer form when it is cheaper, as methods.truncation builds it)."""
    ranks = ranks or {}
    macs = params = attention = weights = 0
    for op in ops:
        if op.kind in ("conv", "linear"):
            fan_in = op.cin * op.kernel * op.kernel
            rank = ranks.get(op.name)
            per_position = (
                rank * (fan_in + op.cout)
                if rank is not None and is_thin(fan_in, op.cout, rank)
                else fan_in * op.cout
            )
            bias = op.cout if op.bias else 0
            layer_macs = (per_position + bias) * op.positions
            macs += layer_macs
            weights += layer_macs
            params += per_position + bias
        elif op.kind == "bn":
            macs += 2 * op.elements
            params += 2 * op.cout
        elif op.kind == "ln":
            macs += op.elements
            params += 2 * op.cout
        elif op.kind in ("act", "pool"):
            macs += op.elements
        elif op.kind == "attention":
            attention += op.elements
        else:
            raise ValueError(f"unknown op kind {op.kind}")
    return Counts(macs, params, attention, weights + attention)


def _conv_bn_relu(name: str, cin: int, cout: int, size: int, bias: bool) -> list[Op]:
    pixels = size * size
    return [
        Op("conv", name, cin, cout, 3, pixels, bias),
        Op("bn", cout=cout, elements=cout * pixels),
        Op("act", elements=cout * pixels),
    ]


def vgg_ops(
    name: str, num_classes: int = 10, in_channels: int = 3, width: float = 1.0, image_size=32
) -> list[Op]:
    ops: list[Op] = []
    c, size, index = in_channels, image_size, 0
    for item in CONFIGS[name]:
        if item == "M":
            ops.append(Op("pool", elements=c * size * size))
            size //= 2
            index += 1
            continue
        out = scaled(int(item), width)
        ops += _conv_bn_relu(f"features.{index}", c, out, size, True)
        c, index = out, index + 3
    ops.append(Op("linear", "classifier", c * size * size, num_classes, bias=True))
    return ops


def resnet_ops(
    stage_channels: list[int],
    blocks: int,
    shortcut: str,
    num_classes: int = 10,
    in_channels: int = 3,
    width: float = 1.0,
    image_size: int = 32,
) -> list[Op]:
    channels = [scaled(c, width) for c in stage_channels]
    size = image_size
    ops = _conv_bn_relu("conv1", in_channels, channels[0], size, False)
    c = channels[0]
    for i, out in enumerate(channels):
        for j in range(blocks):
            stride = 2 if (i > 0 and j == 0) else 1
            out_size = (size - 1) // stride + 1
            pixels = out_size * out_size
            prefix = f"layers.{i}.{j}"
            ops += [
                Op("conv", f"{prefix}.conv1", c, out, 3, pixels),
                Op("bn", cout=out, elements=out * pixels),
                Op("act", elements=out * pixels),
                Op("conv", f"{prefix}.conv2", out, out, 3, pixels),
                Op("bn", cout=out, elements=out * pixels),
                Op("act", elements=out * pixels),
            ]
            if (stride != 1 or c != out) and shortcut == "B":
                ops += [
                    Op("conv", f"{prefix}.shortcut.0", c, out, 1, pixels),
                    Op("bn", cout=out, elements=out * pixels),
                ]
            c, size = out, out_size
    ops.append(Op("pool", elements=c * size * size))
    ops.append(Op("linear", "fc", c, num_classes, bias=True))
    return ops


def vit_ops(
    num_classes: int = 10,
    in_channels: int = 3,
    width: float = 1.0,
    image_size: int = 32,
    patch_size: int = 4,
    depth: int = 8,
    heads: int = 8,
    dim: int = 512,
    mlp_dim: int = 512,
) -> list[Op]:
    d, m = vit_dims(dim, mlp_dim, heads, width)
    tokens = (image_size // patch_size) ** 2
    patch_dim = in_channels * patch_size * patch_size
    ops = [
        Op("ln", cout=patch_dim, elements=tokens * patch_dim),
        Op("linear", "patch_embed", patch_dim, d, positions=tokens, bias=True),
        Op("ln", cout=d, elements=tokens * d),
    ]
    for i in range(depth):
        a, f = f"blocks.{i}.attn", f"blocks.{i}.mlp"
        ops.append(Op("ln", cout=d, elements=tokens * d))
        ops += [Op("linear", f"{a}.{p}", d, d, positions=tokens) for p in ("to_q", "to_k", "to_v")]
        ops.append(Op("attention", elements=2 * tokens * tokens * d))  # q k^T and weights v
        ops.append(Op("linear", f"{a}.to_out", d, d, positions=tokens))
        ops += [
            Op("ln", cout=d, elements=tokens * d),
            Op("linear", f"{f}.fc1", d, m, positions=tokens, bias=True),
            Op("act", elements=tokens * m),
            Op("linear", f"{f}.fc2", m, d, positions=tokens, bias=True),
        ]
    ops += [
        Op("ln", cout=d, elements=tokens * d),
        Op("pool", elements=tokens * d),
        Op("linear", "head", d, num_classes, bias=True),
    ]
    return ops


def model_ops(name: str, **kwargs) -> list[Op]:
    """The operations of registry model `name` built with the same keyword arguments."""
    if name in ("vgg11", "vgg13", "vgg16"):
        return vgg_ops(name, **kwargs)
    if name == "resnet18":
        return resnet_ops([64, 128, 256, 512], 2, "B", **kwargs)
    if name == "resnet20":
        shortcut = kwargs.pop("shortcut", "B")
        return resnet_ops([16, 32, 64], 3, shortcut, **kwargs)
    if name == "vit":
        return vit_ops(**kwargs)
    raise ValueError(f"no analytic count for model '{name}'")


def analytic(name: str, ranks: dict[str, int] | None = None, **kwargs) -> Counts:
    return count(model_ops(name, **kwargs), ranks)
