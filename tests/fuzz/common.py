"""What the conv and sequence generators share: the context, and the composite blocks.

A *family* (``gen_conv.ConvFamily``, ``gen_seq.SeqFamily``) knows its raw layer (a conv or a
Linear), its norms and activations and how to build a chain; the composites here (residual,
concat, split/chunk-and-merge, summed branches, shared module, GLU, SE gate) are written
once over that interface, so every family nests them into random DAGs the same way.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from torch import nn

from .blocks import (
    AddBranches,
    Chunk,
    Concat,
    Gate,
    Glu,
    Residual,
    Shared,
    SplitAttr,
    SplitMerge,
    SplitSizeAttr,
    literal_splitter,
)

MAX_DEPTH = 2  # composites nest at most this deep


@dataclass
class Ctx:
    """The generator's state: its RNG, the block kinds used so far, composites left."""

    rng: random.Random
    budget: int
    kinds: list[str] = field(default_factory=list)

    def width(self, lo: int = 2, hi: int = 16) -> int:
        """A random channel count in [lo, hi], biased to small."""
        return self.rng.choice([w for w in (2, 3, 4, 5, 6, 8, 10, 12, 16) if lo <= w <= hi] or [lo])

    def note(self, kind: str) -> None:
        self.kinds.append(kind)


class Family(Protocol):
    """What a generator family offers the composites."""

    ctx: Ctx
    dim: int  # the channel dim for cat/split

    def lin(self, cin: int, cout: int) -> nn.Module: ...
    def unit(self, cin: int, cout: int) -> nn.Module: ...
    def act(self, c: int) -> nn.Module: ...
    def gate_fcs(self, c: int, r: int) -> tuple[nn.Module, nn.Module, bool]: ...
    def chain(self, cin: int, cout: int, depth: int) -> nn.Module: ...


Maker = Callable[[Family, int, int, int], nn.Module]


def partition(rng: random.Random, total: int, parts: int, lo: int = 1) -> list[int]:
    """``parts`` random positive ints (each >= lo) summing to ``total``."""
    cuts = sorted(rng.sample(range(1, total - (lo - 1) * parts), parts - 1)) if parts > 1 else []
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, total - (lo - 1) * parts], strict=True)]
    return [s + lo - 1 for s in sizes]


def then(f: Family, block: nn.Module, c: int, cout: int) -> nn.Module:
    """``block`` (which keeps ``c`` channels) followed by a projection to ``cout`` if needed."""
    return block if c == cout else nn.Sequential(block, f.unit(c, cout))


def residual(f: Family, cin: int, cout: int, depth: int) -> nn.Module:
    f.ctx.note("residual")
    body = f.chain(cin, cout, depth + 1)
    proj = None if cin == cout and f.ctx.rng.random() < 0.8 else f.lin(cin, cout)
    return Residual(body, proj, f.act(cout) if f.ctx.rng.random() < 0.6 else nn.Identity())


def concat(f: Family, cin: int, cout: int, depth: int) -> nn.Module:
    f.ctx.note("concat")
    rng = f.ctx.rng
    identity = cout - cin >= 2 and rng.random() < 0.3  # DenseNet-style: x is one branch
    rest = cout - cin if identity else cout
    n = min(rng.choice([2, 2, 3]), rest)
    branches: list[nn.Module | None] = [f.chain(cin, c, depth + 1) for c in partition(rng, rest, n)]
    if identity:
        branches.insert(rng.randrange(len(branches) + 1), None)
    return Concat(branches, f.dim)


def _splitter(f: Family, m: int) -> tuple[nn.Module, list[int]]:
    """A random way to cut ``m`` channels into pieces, and the piece sizes it yields."""
    rng, dim = f.ctx.rng, f.dim
    kind = rng.choice(["attr", "attr", "size", "chunk", "chunk", "literal"])
    if kind == "size" and m >= 3:
        s = rng.randrange(2, m) if m > 3 else 2
        sizes = [s] * (m // s) + ([m % s] if m % s else [])
        f.ctx.note("split_size_attr")
        return SplitSizeAttr(s, dim), sizes
    if kind == "chunk" or m < 3:
        n = rng.choice([2, 2, 3]) if m >= 3 else 2
        cs = -(-m // n)
        sizes = [cs] * (m // cs) + ([m % cs] if m % cs else [])
        f.ctx.note("chunk")
        return Chunk(n, dim), sizes
    sizes = partition(rng, m, rng.choice([2, 2, 3]) if m >= 6 else 2)
    if kind == "literal":
        f.ctx.note("split_literal")
        return literal_splitter(sizes, dim), sizes
    f.ctx.note("split_attr")
    return SplitAttr(sizes, dim, method=rng.random() < 0.5), sizes


def split_merge(f: Family, cin: int, cout: int, depth: int) -> nn.Module:
    """CSP / C2f / Ghost / shuffle-style: split ``pre(x)``, transform the parts, re-join."""
    rng = f.ctx.rng
    m = f.ctx.width(4, 16)
    if rng.random() < 0.35:  # cat -> split: piece boundaries may fall inside a branch
        f.ctx.note("cat_then_split")
        pre = concat(f, cin, m, depth)
    else:
        pre = f.unit(cin, m)
    splitter, sizes = _splitter(f, m)
    modes = ["each", "swap", "c2f"] + (["csp", "addback"] if len(sizes) == 2 else [])
    modes += ["sum"] * (len(set(sizes)) == 1)
    mode = rng.choice(modes)
    f.ctx.note(f"split_mode_{mode}")
    if mode == "csp":
        bodies, merged = [f.chain(sizes[1], sizes[1], depth + 1)], m
    elif mode == "c2f":
        k = rng.choice([1, 2])
        bodies = [f.chain(sizes[-1], sizes[-1], depth + 1) for _ in range(k)]
        merged = m + k * sizes[-1]
    elif mode == "sum":
        q = f.ctx.width(2, 12)
        bodies, merged = [f.chain(s, q, depth + 1) for s in sizes], q
    elif mode == "addback":
        if sizes[0] < 2:
            sizes_out = [sizes[0]]
        else:
            sizes_out = partition(rng, sizes[0], 2)
        bodies, merged = [f.chain(sizes[1], q, depth + 1) for q in sizes_out], sizes[0]
    else:
        outs = [f.ctx.width(1, 8) if rng.random() < 0.5 else s for s in sizes]
        bodies, merged = (
            [f.chain(s, q, depth + 1) for s, q in zip(sizes, outs, strict=True)],
            sum(outs),
        )
    post = nn.Identity() if merged == cout and rng.random() < 0.5 else f.unit(merged, cout)
    return SplitMerge(pre, splitter, bodies, mode, post, f.dim)


def add_branches(f: Family, cin: int, cout: int, depth: int) -> nn.Module:
    f.ctx.note("add_branches")
    n = f.ctx.rng.choice([2, 2, 3])
    return AddBranches([f.chain(cin, cout, depth + 1) for _ in range(n)], f.act(cout))


def shared(f: Family, cin: int, cout: int, depth: int) -> nn.Module:
    f.ctx.note("shared_module")
    style = f.ctx.rng.choice(["chain", "sum"])
    return then(f, Shared(f.lin(cin, cin), f.act(cin), style), cin, cout)


def glu(f: Family, cin: int, cout: int, depth: int) -> nn.Module:
    f.ctx.note("glu")
    return Glu(f.lin(cin, 2 * cout), f.dim, functional=f.ctx.rng.random() < 0.5)


def gate(f: Family, cin: int, cout: int, depth: int) -> nn.Module:
    f.ctx.note("se_gate")
    r = max(1, cin // f.ctx.rng.choice([1, 2, 4]))
    fc1, fc2, conv_fc = f.gate_fcs(cin, r)
    g = Gate(fc1, fc2, f.act(r) if conv_fc else nn.ReLU(), 1 if f.dim == 1 else -1, conv_fc)
    return then(f, g, cin, cout)


COMPOSITES: dict[str, tuple[float, Maker]] = {
    "residual": (2.0, residual),
    "concat": (1.5, concat),
    "split_merge": (2.5, split_merge),
    "add_branches": (1.0, add_branches),
    "shared": (0.7, shared),
    "gate": (0.8, gate),
}
LEAVES: dict[str, tuple[float, Maker]] = {"glu": (0.5, glu)}


def pick(ctx: Ctx, table: dict[str, tuple[float, Maker]]) -> Maker:
    """A maker drawn from ``table`` by weight."""
    names = sorted(table)
    return table[ctx.rng.choices(names, weights=[table[n][0] for n in names])[0]][1]


class Composer:
    """``chain`` and ``block``, shared by the generator families: a family gives its own
    leaf and composite tables with :meth:`tables`; the common composites join them while the
    nesting depth and the composite budget allow."""

    ctx: Ctx

    def tables(self) -> tuple[dict[str, tuple[float, Maker]], dict[str, tuple[float, Maker]]]:
        """(leaves, composites) of this family."""
        raise NotImplementedError  # each family returns its module's two tables

    def chain(self, cin: int, cout: int, depth: int) -> nn.Module:
        n = self.ctx.rng.choice([1, 1, 2])
        widths = [cin] + [self.ctx.width(2, 12) for _ in range(n - 1)] + [cout]
        blocks = [self.block(a, b, depth) for a, b in zip(widths, widths[1:], strict=False)]
        return blocks[0] if len(blocks) == 1 else nn.Sequential(*blocks)

    def block(self, cin: int, cout: int, depth: int) -> nn.Module:
        leaves, composites = self.tables()
        table = dict(leaves)
        if depth < MAX_DEPTH and self.ctx.budget > 0:
            self.ctx.budget -= 1
            table.update(COMPOSITES)
            table.update(composites)
        return pick(self.ctx, table)(self, cin, cout, depth)  # type: ignore[arg-type]
