"""The probe in analyze(): groups whose cut breaks code that hard-codes a size are frozen."""

from __future__ import annotations

import torch
from torch import nn

import prunekit


class HardCodedWidth(nn.Module):
    """Flattens with a literal width: cutting the conv's channels breaks the forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        h = torch.relu(self.conv2(h))
        return self.fc(h.reshape(h.shape[0], 128))


class FixedShuffle(nn.Module):
    """Splits channels into a hard-coded 2 x 4 grid and swaps them (a silent permutation)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        n, _, hh, ww = h.shape
        h = h.view(n, 4, -1, hh, ww).transpose(1, 2).reshape(n, -1, hh, ww)
        return self.b(h)


def test_probe_freezes_group_behind_literal_reshape() -> None:
    model, x = HardCodedWidth(), torch.randn(2, 3, 4, 4)
    raw = prunekit.graph.build_graph(model, x)
    assert any(g.key == "conv2.weight:0" for g in raw.groups)
    graph = prunekit.analyze(model, x)
    assert not any(g.key == "conv2.weight:0" for g in graph.groups)
    frozen = [f for f in graph.frozen if "conv2.weight:0" in f.members]
    assert frozen and "breaks the forward" in frozen[0].reason
    assert any(g.key == "conv.weight:0" for g in graph.groups)  # the other group survives
    result = prunekit.prune(model, x, ratio=0.5)
    assert result.model(x).shape == (2, 5)
    prunekit.testing.check_equivalence(model, x)


def test_probe_can_be_skipped() -> None:
    model, x = HardCodedWidth(), torch.randn(2, 3, 4, 4)
    graph = prunekit.analyze(model, x, verify=False)
    assert any(g.key == "conv2.weight:0" for g in graph.groups)


def test_probe_keeps_equivalence_on_fixed_grid_reshape() -> None:
    model, x = FixedShuffle(), torch.randn(2, 3, 4, 4)
    graph = prunekit.analyze(model, x)
    assert graph.groups and all(g.exact for g in graph.groups)
    result = prunekit.prune(model, x, ratio=0.5)
    assert result.model(x).shape == (2, 4, 4, 4)
    prunekit.testing.check_equivalence(model, x, ratio=0.5)
