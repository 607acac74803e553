"""Per-module ratios, score threshold, max_ratio, round_to and budgets through prune()/Pruner."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import prunekit
from prunekit.allocation import AllocationSpec, allocate, clamp_removal, search_budget
from prunekit.errors import ConfigError
from prunekit.evaluation import count_params
from prunekit.graph.dependency import Group, Member


def group(gid: int, n: int, name: str = "fc") -> Group:
    return Group(gid, [Member(f"{name}.weight", 0, [[i] for i in range(n)])], True)


class Three(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Linear(4, 16), nn.ReLU())
        self.block2 = nn.Sequential(nn.Linear(16, 16), nn.ReLU())
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block2(self.block1(x)))


X = torch.randn(2, 4)


def widths(model: Three) -> tuple[int, int]:
    return model.block1[0].out_features, model.block2[0].out_features


def test_clamp_removal_caps_keep_one_and_round() -> None:
    assert clamp_removal(16, 16) == 15  # keep at least one
    assert clamp_removal(16, 12, max_ratio=0.5) == 8
    assert clamp_removal(16, 11, round_to=8) == 8  # keep 5 -> 8
    assert clamp_removal(10, 3, round_to=8) == 2  # keep 7 -> 8
    assert clamp_removal(6, 1, round_to=8) == 0  # keep 5 -> 8, capped at 6
    assert clamp_removal(10, 5, round_to=8) == 2


def test_threshold_and_max_ratio_by_hand() -> None:
    g = group(0, 6)
    s = {0: torch.tensor([0.5, 0.05, 0.3, 0.01, 0.2, 0.9])}
    assert allocate([g], s, AllocationSpec(threshold=0.25)) == {0: [1, 3, 4]}
    assert allocate([g], s, AllocationSpec(threshold=0.25, max_ratio=0.34)) == {0: [1, 3]}
    assert allocate([g], s, AllocationSpec(ratio=0.5, threshold=0.1)) == {0: [1, 3, 4]}
    assert allocate([g], s, AllocationSpec(threshold=0.25, round_to=4)) == {0: [1, 3]}


def test_module_ratios_by_name_glob_and_parent() -> None:
    net = Three()
    assert widths(prunekit.prune(net, X, module_ratios={"block2": 0.75}).model) == (16, 4)
    assert widths(prunekit.prune(net, X, module_ratios={"block*.0": 0.5}).model) == (8, 8)
    res = prunekit.prune(net, X, ratio=0.25, module_ratios={"block1.0": 0.5})
    assert widths(res.model) == (8, 12)
    assert res.plan.meta["module_ratios"] == {"block1.0": 0.5}
    with pytest.raises(ConfigError, match="module_ratios"):
        prunekit.prune(net, X, module_ratios={"block1": 1.5})


def test_threshold_and_max_ratio_through_prune() -> None:
    net = Three()
    with torch.no_grad():
        net.block1[0].weight.fill_(1.0)
        for t in (net.block1[0].weight, net.block1[0].bias):
            t[:5] = 0.0  # units 0..4 have all-zero slices: L1 score 0, below the threshold
        net.block2[0].weight[:, :5] = 0.0
    res = prunekit.prune(net, X, threshold=0.5, importance="l1", module_ratios={})
    assert res.model.block1[0].out_features == 11
    capped = prunekit.prune(net, X, threshold=1e9, max_ratio=0.25)
    assert widths(capped.model) == (12, 12)


def test_one_sizing_rule_only() -> None:
    with pytest.raises(ConfigError, match="one way"):
        prunekit.prune(Three(), X, ratio=0.5, target_params=100)
    with pytest.raises(ConfigError, match="target_params"):
        prunekit.prune(Three(), X, target_params=-3)


def test_budget_search_by_hand() -> None:
    groups = [group(0, 4, "a"), group(1, 4, "b")]
    scores = {0: torch.tensor([1.0, 2.0, 3.0, 4.0]), 1: torch.tensor([10.0, 20.0, 30.0, 40.0])}

    def cost(cut: dict[int, list[int]]) -> int:  # every unit costs 10
        return 80 - 10 * sum(len(v) for v in cut.values())

    cut, rep = search_budget(groups, scores, cost, metric="params", target=45, baseline=80)
    assert rep.achieved == 40 and rep.previous == 50 and rep.achieved <= 45 < rep.previous
    assert sum(len(v) for v in cut.values()) == 4  # global: 2 lowest-normalised of each
    assert cut == {0: [0, 1], 1: [0, 1]}
    with pytest.raises(ConfigError, match="cannot be met"):
        search_budget(groups, scores, cost, metric="params", target=5, baseline=80)


def test_pruner_params_budget_fraction_and_attributes() -> None:
    net = Three()
    base = count_params(net)
    pruner = prunekit.Pruner(net, X, target_params=0.5, round_to=2)
    res = pruner.step()
    rep = pruner.budget_
    assert rep is not None and rep.baseline == base and rep.target == base // 2
    assert count_params(res.model) == rep.achieved <= rep.target < rep.previous
    assert all(w % 2 == 0 for w in widths(res.model))
    assert pruner.plan_ is res.plan and set(pruner.scores_) == {
        "block1.0.weight:0",
        "block2.0.weight:0",
    }
    assert res.plan.meta["target_params"] == 0.5
    replay = res.plan.apply(net, X)
    assert widths(replay) == widths(res.model)


def test_budget_refill_gives_back_a_coarse_step_that_still_fits_by_hand() -> None:
    # a: 16 units costing 10 each, b: 16 units costing 1 each, round_to=4 (steps of 40 and 4).
    # Mean-normalised order: b's 15 small units (0.016), then a's 16 (1.0), then b's big one.
    groups = [group(0, 16, "a"), group(1, 16, "b")]
    scores = {0: torch.ones(16), 1: torch.tensor([0.1] * 15 + [100.0])}

    def cost(cut: dict[int, list[int]]) -> int:
        return 176 - 10 * len(cut[0]) - len(cut[1])

    # ranked cut: k=23 -> a removes 8 (keep 8), b removes 12 (keep 4): cost 176-80-12 = 84;
    # k=22 -> a removes only 4: cost 124 > 88. Refill: giving back a's next 4 (priority 1.0)
    # costs 124 (no), b's next 4 costs 88 (fits); then nothing more fits.
    cut, rep = search_budget(groups, scores, cost, metric="macs", target=88, baseline=176,
                             round_to=4)  # fmt: skip
    assert (rep.achieved, rep.previous, rep.refilled) == (88, 124, 1)
    assert cut == {0: list(range(8)), 1: list(range(8))}
    _, plain = search_budget(groups, scores, cost, metric="macs", target=88, baseline=176,
                             round_to=4, refill=False)  # fmt: skip
    assert (plain.achieved, plain.refilled) == (84, 0)
