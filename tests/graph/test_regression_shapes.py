"""Regression tests for engine bug classes of issue #15 (shapes and groups).

Each model is checked the same way: the engine's proof (``check_equivalence``), then a real
``prune(ratio=0.5)`` whose result must run at another batch size with the right output
shape and coherent module attributes.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import prunekit
from prunekit import PruningPlan
from prunekit.testing import check_equivalence


def _pruned_runs(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """check_equivalence + prune(ratio=0.5) + a forward at another batch size."""
    check_equivalence(model, x)
    pruned = prunekit.prune(model, x, ratio=0.5).model
    other = torch.randn(5, *x.shape[1:])
    with torch.no_grad():
        assert pruned(other).shape == model(other).shape
    return pruned


# --------------------------------------------------------------------------- 1. unique keys
class ConcatChunk(nn.Module):
    """``cat([a (6 ch), b (4 ch)]).chunk(2)``: the chunk boundary falls inside ``a``, so
    ``a``'s channels belong to two groups (a cross-stage / Ghost / ShuffleNet layout)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 12, 3, padding=1)
        self.b = nn.Conv2d(3, 8, 3, padding=1)
        self.cu = nn.Conv2d(10, 6, 1)
        self.cv = nn.Conv2d(10, 6, 1)
        self.head = nn.Conv2d(6, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], 1).chunk(2, 1)
        return self.head(torch.relu(self.cu(u) + self.cv(v)))


def test_regression_concat_chunk_keys_unique() -> None:
    torch.manual_seed(0)
    model, x = ConcatChunk().eval(), torch.randn(2, 3, 8, 8)
    graph = prunekit.analyze(model, x)
    keys = [g.key for g in graph.groups]
    assert len(keys) == len(set(keys)), keys
    shared = [g for g in graph.groups if g.members[0].name == "a.weight"]
    assert len(shared) == 2  # a's channels before and inside the chunk boundary
    assert all("@" in g.key for g in shared)
    assert graph.group(shared[1].key) is shared[1]
    with pytest.raises(prunekit.ConfigError, match="shared by groups a.weight:0@"):
        graph.group("a.weight:0")
    pruned = _pruned_runs(model, x)
    assert pruned.a.out_channels < 12 and pruned.cu.in_channels < 10
    # plans keyed by these keys replay on a fresh trace of a fresh instance
    res = prunekit.prune(model, x, ratio=0.5)
    plan = PruningPlan.from_json(res.plan.to_json())
    assert set(plan.removed) <= set(keys)
    torch.manual_seed(0)
    replayed = plan.apply(ConcatChunk().eval(), x)
    assert [p.shape for p in replayed.parameters()] == [p.shape for p in res.model.parameters()]


def test_duplicate_group_key_is_an_internal_error() -> None:
    from prunekit.graph.dependency import Group, Member, assign_keys

    twins = [Group(i, [Member("a.weight", 0, [[0], [0]])], True) for i in range(2)]
    with pytest.raises(RuntimeError, match="internal error.*both have key"):
        assign_keys(twins)


# --------------------------------------------------------------------------- 2. split sizes
class SplitMerge(nn.Module):
    """A conv's output split into unequal parts (sizes in attributes); one part is convolved
    twice and concatenated back, then added to the other part (C2f / CSP style)."""

    def __init__(self) -> None:
        super().__init__()
        self.split_sizes = [8, 16]
        self.left, self.right = 4, 4
        self.stem = nn.Conv2d(3, 24, 1)
        self.p = nn.Conv2d(16, 8, 3, padding=1)
        self.q = nn.Conv2d(4, 4, 1)
        self.head = nn.Conv2d(24, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(torch.relu(self.stem(x)), self.split_sizes, dim=1)
        p1, p2 = torch.split(self.p(b), [self.left, self.right], dim=1)
        h = torch.cat([p1, self.q(p2)], 1) + a
        return self.head(torch.cat([torch.relu(h), b], 1))


class LiteralSplit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 24, 1)
        self.p = nn.Conv2d(16, 8, 1)
        self.head = nn.Conv2d(8, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(self.stem(x), [8, 16], dim=1)
        return self.head(a + self.p(b))


def test_regression_split_sizes_follow_the_cut() -> None:
    torch.manual_seed(0)
    model, x = SplitMerge().eval(), torch.randn(2, 3, 8, 8)
    graph = prunekit.analyze(model, x)
    stem_units = sum(
        g.num_units for g in graph.groups for m in g.members if m.name == "stem.weight"
    )
    assert stem_units == 24  # no stem channel is frozen by the split
    pruned = _pruned_runs(model, x)
    assert pruned.split_sizes == [
        pruned.stem.out_channels - pruned.p.in_channels,
        pruned.p.in_channels,
    ]
    assert pruned.split_sizes != [8, 16]
    assert pruned.left + pruned.right == pruned.p.out_channels
    assert model.split_sizes == [8, 16] and model.left == 4  # the input model is untouched


def test_split_with_literal_sizes_stays_frozen_with_reason() -> None:
    graph = prunekit.analyze(LiteralSplit().eval(), torch.randn(2, 3, 8, 8))
    assert not any(m.name == "stem.weight" for g in graph.groups for m in g.members)
    reasons = [f.reason for f in graph.frozen if "stem.weight:0" in f.members]
    assert any(
        "split sizes [8, 16] are literals in module '<root>'" in r
        and "store them in an attribute" in r
        and "to let them follow the cut" in r
        for r in reasons
    ), reasons


# --------------------------------------------------------------------------- 3. mixed groups
class MixedGroups(nn.Module):
    """A ``groups=8`` conv and a dense conv (both on the model input) added, then a
    ``groups=4`` conv: channel units must keep every conv's groups divisible."""

    def __init__(self) -> None:
        super().__init__()
        self.g8 = nn.Conv2d(16, 16, 3, padding=1, groups=8)
        self.dense = nn.Conv2d(16, 16, 1)
        self.g4 = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.head = nn.Conv2d(16, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.g8(x) + self.dense(x))
        return self.head(torch.relu(self.g4(y)))


def test_regression_mixed_group_counts_prunable() -> None:
    torch.manual_seed(0)
    model, x = MixedGroups().eval(), torch.randn(2, 16, 8, 8)
    graph = prunekit.analyze(model, x)
    joined = [g for g in graph.groups if g.members[0].name == "g8.weight" and g.members[0].dim == 0]
    assert len(joined) == 1
    # channel k of every group of 8 (and of 4): units {even}, {odd}
    assert joined[0].members[0].indices.tolist() == [list(range(0, 16, 2)), list(range(1, 16, 2))]
    pruned = _pruned_runs(model, x)
    g8, g4 = pruned.g8, pruned.g4
    assert (g8.out_channels, g8.groups, g4.in_channels, g4.groups) == (8, 8, 8, 4)
    assert pruned.dense.out_channels == 8
    assert g8.weight.shape[0] % g8.groups == 0 and g4.weight.shape[1] * g4.groups == 8


class TransposedGroups(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 1)
        self.up = nn.ConvTranspose2d(16, 16, 2, stride=2, groups=4)
        self.head = nn.Conv2d(16, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.up(torch.relu(self.stem(x)))))


def test_grouped_transposed_conv_input_cut_keeps_groups() -> None:
    torch.manual_seed(0)
    model, x = TransposedGroups().eval(), torch.randn(2, 3, 8, 8)
    graph = prunekit.analyze(model, x)
    stem = next(g for g in graph.groups if g.members[0].name == "stem.weight")
    assert stem.num_units == 4  # channel k of each of the 4 input groups
    pruned = _pruned_runs(model, x)
    assert pruned.up.in_channels % pruned.up.groups == 0 and pruned.up.in_channels < 16


# --------------------------------------------------------------------------- 4. group names
class ResidualStack(nn.Module):
    def __init__(self, width: int = 8, depth: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(4, width)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, width))
            for _ in range(depth)
        )
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for layer in self.layers:
            h = h + layer(h)
        return self.head(h)


def test_group_names_say_residual_stream() -> None:
    graph = prunekit.analyze(ResidualStack().eval(), torch.randn(2, 4))
    stream = graph.group("embed.weight:0")
    assert stream.whole_stream
    assert stream.name == (
        f"residual stream (embed.weight dim 0, {len(stream.members)} members, "
        "all 3 blocks of 'layers')"
    )
    inner = graph.group("layers.0.0.weight:0")
    assert not inner.whole_stream and inner.name.startswith("layers.0.0.weight dim 0 (")
    text = str(graph)
    assert "1 group(s) span a whole residual stream" in text
    assert f"Group {stream.id} (8 units, exact): residual stream (" in text
    assert "[spans the whole residual stream]" in text
