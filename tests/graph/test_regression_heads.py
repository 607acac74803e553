"""Regression tests for head splits whose sizes come from module attributes (issue #15).

1. Reshapes in one module that read one size attribute (``self.head_dim`` in the q, k and
   v views of a single-head attention) must be cut equally: the attribute follows the cut,
   and every reshape then reads its new value.
2. Heads inferred with ``-1`` (``view(b, n, -1, self.head_dim)``) are the units even when
   the head count equals the head size, so a cut never changes ``head_dim``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import prunekit
from prunekit.testing import check_equivalence


class Attention(nn.Module):
    """Self-attention with separate q/k/v projections; the views read ``self.head_dim``."""

    def __init__(self, dim: int, heads: int, head_dim: int, *, view: str, scale: str) -> None:
        super().__init__()
        inner = heads * head_dim
        if view == "attr":
            self.num_heads = heads
        self.head_dim, self.view_mode, self.scale_mode = head_dim, view, scale
        self.scale = head_dim**-0.5
        self.q, self.k, self.v = nn.Linear(dim, inner), nn.Linear(dim, inner), nn.Linear(dim, inner)
        self.o = nn.Linear(inner, dim)

    def _heads(self, t: Tensor, b: int, n: int) -> Tensor:
        if self.view_mode == "attr":
            t = t.view(b, n, self.num_heads, self.head_dim)
        else:  # heads inferred
            t = t.view(b, n, -1, self.head_dim)
        return t.transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        q, k, v = (self._heads(p(x), b, n) for p in (self.q, self.k, self.v))
        if self.scale_mode == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v)
        elif self.scale_mode == "shape":
            out = ((q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])).softmax(-1) @ v
        else:
            out = ((q @ k.transpose(-2, -1)) * self.scale).softmax(-1) @ v
        return self.o(out.transpose(1, 2).reshape(b, n, -1))


class Block(nn.Module):
    def __init__(self, heads: int, head_dim: int, *, view: str, scale: str = "attr") -> None:
        super().__init__()
        self.attn = Attention(8, heads, head_dim, view=view, scale=scale)
        self.head = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(x + self.attn(x))


def _group_of(graph: prunekit.DependencyGraph, tensor: str) -> int:
    return next(g.id for g in graph.groups if any(m.name == tensor for m in g.members))


# ------------------------------------------------- 1. one size attribute, one cut
@pytest.mark.parametrize("view", ["attr", "minus_heads"])
@pytest.mark.parametrize("scale", ["attr", "shape", "sdpa"])
def test_regression_one_head_size_attribute_couples_q_k_and_v(view: str, scale: str) -> None:
    """One head: the head dims are the units, and q/k dims and v dims (otherwise two
    groups) are one group because every view reads ``self.head_dim``: uneven cuts are
    impossible, and an even one runs and keeps ``head_dim`` coherent."""
    torch.manual_seed(0)
    model, x = Block(1, 8, view=view, scale=scale).eval(), torch.randn(2, 5, 8)
    graph = prunekit.analyze(model, x)
    gid = _group_of(graph, "attn.q.weight")
    assert _group_of(graph, "attn.v.weight") == gid
    assert _group_of(graph, "attn.o.weight") == gid
    group = graph.groups[gid]
    assert group.num_units == 8
    assert group.exact == (scale == "attr"), group.reasons  # shape/sdpa: the temperature
    res = prunekit.prune(model, x, group_ratios={group.key: 0.25})
    attn = res.model.attn
    assert attn.q.out_features == attn.v.out_features == attn.o.in_features == 6
    assert attn.head_dim == 6
    with torch.no_grad():
        assert res.model(torch.randn(3, 5, 8)).shape == (3, 5, 3)
    if scale == "attr":
        check_equivalence(model, x)


class TwoViews(nn.Module):
    """Not attention: two branches viewed with one ``self.width`` attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.width = 6
        self.a, self.b = nn.Linear(4, 6), nn.Linear(4, 6)
        self.ha, self.hb = nn.Linear(6, 2), nn.Linear(6, 2)

    def forward(self, x: Tensor) -> Tensor:
        u = torch.relu(self.a(x)).view(-1, 1, self.width)
        v = torch.relu(self.b(x)).view(-1, 1, self.width)
        return self.ha(u.flatten(1)) + self.hb(v.flatten(1))


def test_regression_reshapes_reading_one_attribute_are_cut_equally() -> None:
    torch.manual_seed(0)
    model, x = TwoViews().eval(), torch.randn(3, 4)
    graph = prunekit.analyze(model, x)
    assert _group_of(graph, "a.weight") == _group_of(graph, "b.weight")
    check_equivalence(model, x)
    res = prunekit.prune(model, x, ratio=0.5)
    assert res.model.a.out_features == res.model.b.out_features == res.model.width == 3
    with torch.no_grad():
        assert res.model(torch.randn(5, 4)).shape == (5, 2)


# ------------------------------------------------- 2. heads inferred with -1
@pytest.mark.parametrize(("heads", "head_dim"), [(4, 2), (2, 4), (4, 4), (2, 2)])
def test_regression_heads_inferred_with_minus_one_are_the_units(heads: int, head_dim: int) -> None:
    """``view(b, n, -1, self.head_dim)`` without a head-count attribute: whole heads are
    the units (also when the head count equals the head size), the cut is exact and
    ``head_dim`` keeps its value."""
    torch.manual_seed(0)
    model = Block(heads, head_dim, view="minus_heads").eval()
    x = torch.randn(2, 5, 8)
    graph = prunekit.analyze(model, x)
    gid = _group_of(graph, "attn.q.weight")
    group = graph.groups[gid]
    assert _group_of(graph, "attn.v.weight") == gid
    assert group.num_units == heads and group.exact, group.reasons
    q = next(m for m in group.members if m.name == "attn.q.weight")
    assert q.indices.shape == (heads, head_dim)  # a unit = the head_dim rows of one head
    check_equivalence(model, x)
    res = prunekit.prune(model, x, group_ratios={group.key: 0.5})
    attn = res.model.attn
    assert attn.head_dim == head_dim
    assert attn.q.out_features == attn.v.out_features == heads // 2 * head_dim
    with torch.no_grad():
        assert res.model(torch.randn(3, 5, 8)).shape == (3, 5, 3)
