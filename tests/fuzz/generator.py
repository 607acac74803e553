"""``make_case(seed)``: one random net, its inputs and its check parameters, deterministic.

Everything random comes from ``random.Random(seed)`` (architecture) and a torch RNG seeded
with ``seed`` inside ``torch.random.fork_rng`` (weights, inputs), so the global RNGs are
left alone and a seed always rebuilds the same net.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .common import Ctx
from .gen_conv import conv_head, conv_trunk
from .gen_seq import seq_head, seq_trunk

FAMILIES = ("conv2d", "conv1d", "seq")
BATCH, OTHER_BATCH = 2, 3


class FuzzNet(nn.Module):
    """stem -> blocks -> head; the output is a tensor, a tuple or a dict (with an aux output
    taken from an intermediate block, raw or through its own head)."""

    def __init__(
        self, stem: nn.Module, blocks: list[nn.Module], head: nn.Module, *, style: str,
        tap: int, aux: nn.Module | None, counter: bool,
    ) -> None:  # fmt: skip
        super().__init__()
        self.stem, self.blocks, self.head = stem, nn.ModuleList(blocks), head
        self.style, self.tap, self.aux = style, tap, aux
        self.counter = counter
        if counter:  # a forward that writes a buffer in place (a call counter)
            self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: Tensor) -> Any:
        if self.counter:
            self.calls += 1
        h = self.stem(x)
        feats = []
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        out = self.head(h)
        if self.style == "tensor":
            return out
        side = feats[self.tap] if self.aux is None else self.aux(feats[self.tap])
        if self.style == "tuple":
            return out, side
        return {"logits": out, "aux": side}

    def extra_repr(self) -> str:
        return f"style={self.style!r}, tap={self.tap}, counter={self.counter}"


@dataclass
class FuzzCase:
    """One fuzzed net with everything its checks need."""

    seed: int
    family: str
    model: nn.Module
    inputs: Tensor
    other_inputs: Tensor
    ratio: float
    eq_seed: int
    kinds: list[str] = field(default_factory=list)

    def describe(self) -> str:
        shape = tuple(self.inputs.shape)
        return (
            f"seed={self.seed} family={self.family} input={shape} {self.inputs.dtype} "
            f"check_equivalence(ratio={self.ratio:.3f}, seed={self.eq_seed})\n"
            f"blocks used: {sorted(set(self.kinds))}\n{self.model}"
        )


def _build(ctx: Ctx, family: str) -> tuple[nn.Module, Tensor, Tensor]:
    rng = ctx.rng
    n_out = rng.choice([2, 3, 5])
    if family == "seq":
        tokens, embed = rng.choice([3, 4, 5, 6]), rng.choice([None, None, 11])
        din = rng.choice([3, 4, 6, 8])
        stem, blocks, widths = seq_trunk(ctx, din, tokens, embed)
        head = seq_head(ctx, widths[-1], tokens, n_out)
        tap = rng.randrange(len(blocks))
        aux = seq_head(ctx, widths[tap], tokens, 2) if rng.random() < 0.5 else None
        if embed:
            x = torch.randint(0, embed, (BATCH, tokens))
            other = torch.randint(0, embed, (OTHER_BATCH, tokens))
        else:
            x, other = torch.randn(BATCH, tokens, din), torch.randn(OTHER_BATCH, tokens, din)
    else:
        nd = 2 if family == "conv2d" else 1
        cin, size = rng.choice([1, 2, 3]), rng.choice([6, 8] if nd == 2 else [8, 12, 16])
        stem, blocks, shapes = conv_trunk(ctx, nd, cin, size)
        head = conv_head(ctx, nd, *shapes[-1], n_out)
        tap = rng.randrange(len(blocks))
        aux = conv_head(ctx, nd, *shapes[tap], 2) if rng.random() < 0.5 else None
        x = torch.randn(BATCH, cin, *[size] * nd)
        other = torch.randn(OTHER_BATCH, cin, *[size] * nd)
    if rng.random() < 0.04:
        ctx.note("scripted_submodule")
        stem = nn.Sequential(stem, torch.jit.script(nn.ReLU()))
    style = rng.choice(["tensor", "tensor", "tuple", "dict"])
    if style != "tensor":
        ctx.note(f"output_{style}")
    counter = rng.random() < 0.08
    if counter:
        ctx.note("buffer_counter")
    net = FuzzNet(stem, blocks, head, style=style, tap=tap, aux=aux, counter=counter)
    return net, x, other


@torch.no_grad()
def _randomize(model: nn.Module) -> None:
    """Non-trivial norm statistics/affines and PReLU slopes (else a cut of zeroed units
    through an identity-like norm proves little)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)):
            if m.weight is not None:
                m.weight.uniform_(0.5, 1.5)
            if m.bias is not None:
                m.bias.normal_(0.0, 0.1)
        if isinstance(m, nn.PReLU):
            m.weight.uniform_(0.05, 0.5)


def _flags(ctx: Ctx, model: nn.Module) -> None:
    """Random train/eval flags (sometimes mixed) and, rarely, a frozen parameter."""
    rng = ctx.rng
    model.train(rng.random() < 0.5)
    mods = list(model.modules())
    if rng.random() < 0.2:
        ctx.note("mixed_training_flags")
        mods[rng.randrange(len(mods))].train(rng.random() < 0.5)
    params = list(model.parameters())
    if params and rng.random() < 0.1:
        ctx.note("frozen_param")
        params[rng.randrange(len(params))].requires_grad_(False)


def make_case(seed: int) -> FuzzCase:
    """The net of ``seed``: same seed, same architecture, weights and inputs."""
    rng = random.Random(seed)
    family = rng.choice(FAMILIES)
    ctx = Ctx(rng=rng, budget=rng.choice([2, 3, 4]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, x, other = _build(ctx, family)
        _randomize(model)
    _flags(ctx, model)
    return FuzzCase(
        seed=seed, family=family, model=model, inputs=x, other_inputs=other,
        ratio=round(rng.uniform(0.05, 0.9), 3), eq_seed=rng.randrange(10_000), kinds=ctx.kinds,
    )  # fmt: skip
