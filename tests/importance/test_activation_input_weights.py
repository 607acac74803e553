"""Activation criteria read the inputs of any module whose own weight consumes the group,
not only of modules whose weight is literally named ``weight`` (regression: the group feeding
``nn.MultiheadAttention`` through ``in_proj_weight`` got equal scores)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import prunekit
from prunekit.importance import ActivationMean, APoZ, Wanda
from prunekit.importance.calibration import input_weight


class FeedsAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(6, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.proj(x))
        a, _ = self.attn(h, h, h)
        return self.head(a.mean(1))


def test_input_weight_names_the_tensor_that_reads_the_input() -> None:
    assert input_weight(nn.Linear(2, 3)) == "weight"
    assert input_weight(nn.MultiheadAttention(4, 2)) == "in_proj_weight"
    assert input_weight(nn.BatchNorm1d(4)) is None  # a norm scale reads no input features


@pytest.mark.parametrize("cls", [ActivationMean, APoZ, Wanda])
def test_regression_group_feeding_multihead_attention_is_scored_from_its_inputs(
    cls: type,
) -> None:
    torch.manual_seed(0)
    model = FeedsAttention().eval()
    with torch.no_grad():
        model.proj.weight[:4] *= 0.01  # units 0-3 barely activate: they must rank lowest
        model.proj.bias.zero_()
    x = torch.randn(4, 5, 6)
    data = [(torch.randn(4, 5, 6), torch.zeros(4, dtype=torch.long)) for _ in range(3)]
    graph = prunekit.analyze(model, x)
    group = next(g for g in graph.groups if any(m.name == "proj.weight" for m in g.members))
    assert any(m.name == "attn.in_proj_weight" for m in group.members)
    crit = cls(data=data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "equal scores" fallback warning
        crit.prepare(model, graph)
        scores = crit(group, graph.tensors)
    assert scores.shape == (8,) and torch.isfinite(scores).all()
    assert len(set(scores.tolist())) > 1
    if cls is not APoZ:  # APoZ ranks by the fraction of zeros, not by magnitude
        assert set(scores.argsort()[:4].tolist()) == {0, 1, 2, 3}
