"""Greedy reconstruction against a hand computation: a unit the others can rebuild goes
first, and the unit that then carries its information stays.

Network ``x (3) -> fc1 = Linear(3, 3, bias=False), W1 = I -> ReLU -> fc2 = Linear(3, 1,
bias=False), W2 = [[1, 1, 1]]``. The calibration rows make the hidden activations::

    h0 = [1, 1, 0, 0]   h1 = [1, 1, 0, 1] = h0 + e3   h2 = [0, 0, 1, 0]   y = [2, 2, 1, 1]

Refit errors per row (SSE / 4) of the least-squares fit of y on the kept columns:

* drop h0 -> y ~ 5/3 h1 + h2 leaves [1/3, 1/3, 0, -2/3]: 1/6;  drop h1 -> e3 is lost: 1/4;
  drop h2 -> 1/4 (the single-unit OBS scores: [1/6, 1/4, 1/4]).
* greedy: h0 goes (1/6); then from {h1, h2}: keeping h1 (y ~ 5/3 h1) leaves
  [1/3, 1/3, 1, -2/3]: 5/12, keeping h2 leaves [2, 2, 0, 1]: 9/4 -> h2 goes (5/12);
  then h1: nothing left, ||y||^2 / 4 = 5/2. Scores [1/6, 5/2, 5/12]: cutting two units
  keeps h1, which the single-unit scores rank as cheap as h2.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ConfigError
from prunekit.importance import OBS, Reconstruction

X = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


def tiny() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(3, 3, bias=False), nn.ReLU(), nn.Linear(3, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(3))
        net[2].weight.fill_(1.0)
    return net


def scores(crit: object, net: nn.Module) -> list[float]:
    graph = prunekit.analyze(net, X[:1])
    crit.prepare(net, graph)  # type: ignore[attr-defined]
    return crit(graph.groups[0], graph.tensors).tolist()  # type: ignore[operator]


def test_reconstruction_matches_the_hand_computation() -> None:
    crit = Reconstruction(data=[X], damp=0.0)
    assert scores(crit, tiny()) == pytest.approx([1 / 6, 5 / 2, 5 / 12], rel=1e-5)
    assert crit.cost_["forward_passes"] == 1 and crit.cost_["solves"] == 4  # 1 inverse + 3


def test_single_unit_obs_ties_what_the_greedy_selection_separates() -> None:
    assert scores(OBS(data=[X], damp=0.0, chunks=1), tiny()) == pytest.approx(
        [1 / 6, 1 / 4, 1 / 4], rel=1e-5
    )


def test_prune_with_reconstruction_keeps_the_unit_that_carries_the_information() -> None:
    res = prunekit.prune(tiny(), X[:1], ratio=0.67, importance=Reconstruction(data=[X], damp=0.0))
    assert res.plan.removed == {"0.weight:0": [0, 2]}


def test_reconstruction_steps_remove_several_units_a_round() -> None:
    # two rounds of 2 units: {h0, h1} or ... the cheapest pair by single costs is (h0, h1)
    # (1/6, 1/4; stable order), removed jointly: y ~ h2 leaves [2, 2, 0, 1]: 9/4; then h2: 5/2
    crit = Reconstruction(data=[X], damp=0.0, steps=2)
    assert scores(crit, tiny()) == pytest.approx([9 / 4, 9 / 4, 5 / 2], rel=1e-5)
    with pytest.raises(ConfigError, match="steps"):
        Reconstruction(data=[X], steps=0)
