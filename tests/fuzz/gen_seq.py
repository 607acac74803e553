"""Random sequence nets on (B, T, D) tokens: Linear/LayerNorm/attention/Conv1d blocks."""

from __future__ import annotations

import math

from torch import nn

from . import common
from .attention import PosEmbed, PreNorm, TokenPool
from .blocks import Residual, Transposed
from .common import Ctx
from .gen_conv import attention_inner, divisors


class SeqFamily(common.Composer):
    """Blocks on (B, T, D) tokens; cat and split act on the last dim."""

    dim = -1

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx

    def lin(self, cin: int, cout: int) -> nn.Module:
        return nn.Linear(cin, cout, bias=self.ctx.rng.random() < 0.7)

    def norm(self, c: int) -> nn.Module:
        if self.ctx.rng.random() < 0.3:
            self.ctx.note("layernorm")
            return nn.LayerNorm(c, elementwise_affine=self.ctx.rng.random() < 0.8)
        return nn.Identity()

    def act(self, c: int) -> nn.Module:
        if self.ctx.rng.random() < 0.05:
            self.ctx.note("prelu")
            return nn.PReLU()
        return self.ctx.rng.choice([nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Identity])()

    def unit(self, cin: int, cout: int) -> nn.Module:
        return nn.Sequential(self.lin(cin, cout), self.norm(cout), self.act(cout))

    def gate_fcs(self, c: int, r: int) -> tuple[nn.Module, nn.Module, bool]:
        return nn.Linear(c, r), nn.Linear(r, c), False

    def tables(
        self,
    ) -> tuple[dict[str, tuple[float, common.Maker]], dict[str, tuple[float, common.Maker]]]:
        return LEAVES, COMPOSITES


def leaf(f: SeqFamily, cin: int, cout: int, depth: int) -> nn.Module:
    return f.unit(cin, cout)


def conv1d(f: SeqFamily, cin: int, cout: int, depth: int) -> nn.Module:
    """Conv1d over the tokens (channels = features), grouped sometimes, BN or GN."""
    f.ctx.note("conv1d_on_tokens")
    rng = f.ctx.rng
    g = rng.choice(divisors(math.gcd(cin, cout))) if rng.random() < 0.3 else 1
    k = rng.choice([1, 3])
    norm = rng.choice(
        [nn.BatchNorm1d(cout), nn.GroupNorm(rng.choice(divisors(cout)), cout), nn.Identity()]
    )
    act = nn.PReLU(cout) if rng.random() < 0.2 else nn.ReLU()
    return Transposed(nn.Sequential(nn.Conv1d(cin, cout, k, padding=k // 2, groups=g), norm, act))


def attention(f: SeqFamily, cin: int, cout: int, depth: int) -> nn.Module:
    """Pre-norm self-attention with a residual."""
    inner = attention_inner(f.ctx, cin)
    if f.ctx.rng.random() < 0.7:
        inner = PreNorm(nn.LayerNorm(cin), inner)
    return common.then(f, Residual(inner, None, nn.Identity()), cin, cout)


def mlp(f: SeqFamily, cin: int, cout: int, depth: int) -> nn.Module:
    """Pre-norm MLP with a residual: x + fc2(act(fc1(norm(x))))."""
    f.ctx.note("mlp")
    h = f.ctx.width(4, 16)
    body = nn.Sequential(f.lin(cin, h), f.act(h), f.lin(h, cin))
    return common.then(f, Residual(PreNorm(f.norm(cin), body), None, nn.Identity()), cin, cout)


COMPOSITES: dict[str, tuple[float, common.Maker]] = {
    "attention": (2.0, attention),
    "mlp": (1.0, mlp),
}
LEAVES: dict[str, tuple[float, common.Maker]] = {
    "leaf": (3.0, leaf),
    "conv1d": (0.8, conv1d),
    **common.LEAVES,
}


def seq_trunk(
    ctx: Ctx, din: int, tokens: int, embed: int | None
) -> tuple[nn.Module, list[nn.Module], list[int]]:
    """Stem (an Embedding for integer tokens, else a Linear), optional positions, blocks
    with each one's output width."""
    f = SeqFamily(ctx)
    d = ctx.width(4, 12)
    stem: nn.Module = nn.Embedding(embed, d) if embed else f.lin(din, d)
    if ctx.rng.random() < 0.3:
        ctx.note("pos_embed")
        stem = nn.Sequential(stem, PosEmbed(tokens, d))
    blocks: list[nn.Module] = []
    widths: list[int] = []
    for _ in range(ctx.rng.choice([2, 3, 3, 4])):
        dout = ctx.width(4, 16)
        blocks.append(f.block(d, dout, 0))
        d = dout
        widths.append(d)
    return stem, blocks, widths


def seq_head(ctx: Ctx, d: int, tokens: int, n_out: int) -> nn.Module:
    """Pool (mean / first token / flatten) -> Linear, or a per-token Linear."""
    r = ctx.rng.random()
    if r < 0.25:
        ctx.note("token_head")
        return nn.Linear(d, n_out)
    mode = "flatten" if r < 0.45 else ctx.rng.choice(["mean", "first"])
    ctx.note(f"pool_{mode}")
    width = d * tokens if mode == "flatten" else d
    return nn.Sequential(TokenPool(mode), nn.Linear(width, n_out))
