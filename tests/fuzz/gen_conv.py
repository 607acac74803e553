"""Random conv nets (1-D or 2-D): the conv family of blocks and the top-level layout."""

from __future__ import annotations

import math

from torch import nn

from . import common
from .attention import MHA, Attention, PreNorm
from .blocks import AddBranches, ChannelsLast, Residual
from .common import Ctx

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_POOL = {1: (nn.MaxPool1d, nn.AvgPool1d), 2: (nn.MaxPool2d, nn.AvgPool2d)}
_GAP = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


class ConvFamily(common.Composer):
    """Blocks on (B, C, *spatial) maps; ``nd`` spatial dims."""

    dim = 1

    def __init__(self, ctx: Ctx, nd: int) -> None:
        self.ctx, self.nd = ctx, nd

    def conv(self, cin: int, cout: int, k: int = 1, groups: int = 1, stride: int = 1) -> nn.Module:
        bias = self.ctx.rng.random() < 0.6
        return _CONV[self.nd](cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=bias)

    def lin(self, cin: int, cout: int) -> nn.Module:
        return self.conv(cin, cout, self.ctx.rng.choice([1, 3]))

    def norm(self, c: int) -> nn.Module:
        r = self.ctx.rng.random()
        if r < 0.45:
            return _BN[self.nd](c)
        if r < 0.6:
            self.ctx.note("groupnorm")
            return nn.GroupNorm(self.ctx.rng.choice(divisors(c)), c)
        return nn.Identity()

    def act(self, c: int) -> nn.Module:
        r = self.ctx.rng.random()
        if r < 0.06:
            self.ctx.note("prelu_channel")
            return nn.PReLU(c)
        if r < 0.08:
            self.ctx.note("prelu")
            return nn.PReLU()
        return self.ctx.rng.choice(
            [nn.ReLU, nn.ReLU, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.Identity]
        )()

    def unit(self, cin: int, cout: int, groups: int = 1, stride: int = 1) -> nn.Module:
        k = self.ctx.rng.choice([1, 3]) if stride == 1 else 3
        return nn.Sequential(
            self.conv(cin, cout, k, groups, stride), self.norm(cout), self.act(cout)
        )

    def gate_fcs(self, c: int, r: int) -> tuple[nn.Module, nn.Module, bool]:
        if self.ctx.rng.random() < 0.5:
            return self.conv(c, r), self.conv(r, c), True
        return nn.Linear(c, r), nn.Linear(r, c), False

    def tables(
        self,
    ) -> tuple[dict[str, tuple[float, common.Maker]], dict[str, tuple[float, common.Maker]]]:
        return LEAVES, COMPOSITES


def leaf(f: ConvFamily, cin: int, cout: int, depth: int) -> nn.Module:
    g = f.ctx.rng.choice(divisors(math.gcd(cin, cout))) if f.ctx.rng.random() < 0.25 else 1
    if g > 1:
        f.ctx.note("grouped_conv")
    return f.unit(cin, cout, groups=g)


def depthwise(f: ConvFamily, cin: int, cout: int, depth: int) -> nn.Module:
    """MobileNet: [1x1 expand] -> depthwise 3x3 (x mult) -> 1x1 project [+ residual]."""
    f.ctx.note("depthwise")
    rng = f.ctx.rng
    e = cin * rng.choice([1, 2]) if rng.random() < 0.5 else cin
    layers = [f.unit(cin, e)] if e != cin else []
    mult = rng.choice([1, 1, 2])
    layers += [f.unit(e, e * mult, groups=e), f.conv(e * mult, cout), f.norm(cout)]
    body = nn.Sequential(*layers)
    if cin == cout and rng.random() < 0.5:
        return Residual(body, None, nn.Identity())
    return body


def mixed_groups(f: ConvFamily, cin: int, cout: int, depth: int) -> nn.Module:
    """A groups=g1 conv + a dense (or groups=g3) conv -> add -> a groups=g2 conv."""
    f.ctx.note("mixed_groups")
    rng = f.ctx.rng
    m = rng.choice([4, 8, 12, 16])
    gs = [rng.choice(divisors(math.gcd(cin, m))), rng.choice([1, *divisors(math.gcd(cin, m))])]
    branches = [f.unit(cin, m, groups=g) for g in gs]
    post = f.unit(m, cout, groups=rng.choice(divisors(math.gcd(m, cout))))
    return AddBranches(branches, post)


def attention(f: ConvFamily, cin: int, cout: int, depth: int) -> nn.Module:
    """Self-attention over the spatial positions, with a residual (ViT-in-a-CNN)."""
    inner = attention_inner(f.ctx, cin)
    if f.ctx.rng.random() < 0.5:
        inner = PreNorm(nn.LayerNorm(cin), inner)
    return common.then(f, ChannelsLast(inner), cin, cout)


def attention_inner(ctx: Ctx, dim: int) -> nn.Module:
    """A hand-written ``Attention`` or ``nn.MultiheadAttention`` on ``dim`` features."""
    rng = ctx.rng
    heads_mha = [h for h in (1, 2, 4) if dim % h == 0 and dim // h >= 1]
    if rng.random() < 0.3 and heads_mha:
        ctx.note("mha")
        return MHA(dim, rng.choice(heads_mha), bias=rng.random() < 0.7)
    scale_mode = rng.choice(["shape", "shape", "attr", "sdpa"])
    ctx.note(f"attention_{scale_mode}")
    return Attention(
        dim, rng.choice([1, 2, 4]), rng.choice([2, 3, 4]), fused=rng.random() < 0.4,
        scale_mode=scale_mode, view_mode=rng.choice(["attr", "minus_dim", "minus_heads"]),
    )  # fmt: skip


COMPOSITES: dict[str, tuple[float, common.Maker]] = {
    "depthwise": (1.0, depthwise),
    "mixed_groups": (1.0, mixed_groups),
    "attention": (1.0, attention),
}
LEAVES: dict[str, tuple[float, common.Maker]] = {
    "leaf": (3.0, leaf),
    **common.LEAVES,
}


def downsample(f: ConvFamily, cin: int, cout: int) -> nn.Module:
    """A pooling layer or a strided conv: halves every spatial size."""
    f.ctx.note("pool")
    r = f.ctx.rng.random()
    if r < 0.4:
        return f.unit(cin, cout, stride=2)
    pool = _POOL[f.nd][r < 0.7](2)
    return pool if cin == cout else nn.Sequential(pool, f.unit(cin, cout))


def conv_trunk(
    ctx: Ctx, nd: int, cin: int, size: int
) -> tuple[nn.Module, list[nn.Module], list[tuple[int, int]]]:
    """Stem and top-level blocks, with each block's output (width, spatial size)."""
    f = ConvFamily(ctx, nd)
    c = ctx.width(4, 12)
    stem = f.unit(cin, c)
    blocks: list[nn.Module] = []
    shapes: list[tuple[int, int]] = []
    for _ in range(ctx.rng.choice([2, 3, 3, 4])):
        cout = ctx.width(4, 16)
        if size >= 4 and ctx.rng.random() < 0.3:
            blocks.append(downsample(f, c, cout))
            size //= 2
        else:
            blocks.append(f.block(c, cout, 0))
        c = cout
        shapes.append((c, size))
    return stem, blocks, shapes


def conv_head(ctx: Ctx, nd: int, c: int, size: int, n_out: int) -> nn.Module:
    """GAP -> [Linear -> BN1d/PReLU] -> Linear, flatten -> Linear, or a 1x1 conv map."""
    rng = ctx.rng
    r = rng.random()
    if r < 0.25 and c * size**nd <= 512:
        ctx.note("flatten_linear")
        return nn.Sequential(nn.Flatten(), nn.Linear(c * size**nd, n_out))
    if r < 0.35:
        ctx.note("dense_head")
        return _CONV[nd](c, n_out, 1)
    layers: list[nn.Module] = [_GAP[nd](1), nn.Flatten()]
    if rng.random() < 0.4:
        h = ctx.width(4, 12)
        extra = rng.choice([nn.BatchNorm1d(h), nn.PReLU(h), nn.ReLU()])
        layers += [nn.Linear(c, h), extra]
        c = h
    return nn.Sequential(*layers, nn.Linear(c, n_out))
