"""Schedules: ramp numbers, iterative re-scoring with a callback, hierarchical order, replay."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ConfigError, PlanError
from prunekit.schedule import Hierarchical, Iterative, OneShot, SchedulePlan, ramp

X = torch.randn(2, 4)


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2)
    )


def test_cubic_ramp_is_zhu_gupta() -> None:
    # s_t = s_f + (s_i - s_f)(1 - t/T)^3 with s_i = 0, s_f = 0.8, T = 4
    want = [0.8 - 0.8 * (1 - t / 4) ** 3 for t in range(1, 5)]
    assert ramp(0.8, 4, "cubic") == pytest.approx(want)
    assert ramp(0.8, 4, "cubic")[0] == pytest.approx(0.8 * (1 - 27 / 64))
    assert ramp(0.6, 3, "linear", initial=0.3) == pytest.approx([0.4, 0.5, 0.6])
    with pytest.raises(ConfigError, match="ramp"):
        ramp(0.5, 2, "quadratic")


def test_iterative_reaches_target_and_calls_back_between_steps() -> None:
    seen: list[tuple[int, int]] = []
    sched = Iterative(
        0.5, steps=4, ramp="cubic", callback=lambda m, t: seen.append((t, m[0].out_features))
    )
    out = sched.run(prunekit.Pruner(mlp(), X))
    assert out.model[0].out_features == 16 and out.model[2].out_features == 16
    assert [t for t, _ in seen] == [0, 1, 2]  # between steps, not after the last
    widths = [w for _, w in seen]
    assert widths == sorted(widths, reverse=True) and widths[0] < 32
    assert len(out.plan.steps) == 4


def test_scores_are_re_estimated_each_step() -> None:
    prepared: list[int] = []

    class Counting:
        def prepare(self, model: nn.Module, graph: prunekit.DependencyGraph) -> None:
            prepared.append(model[0].out_features)

        def __call__(self, group: prunekit.Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
            return torch.arange(group.num_units, dtype=torch.float)

    Iterative(0.5, steps=3, ramp="linear").run(prunekit.Pruner(mlp(), X, importance=Counting()))
    assert len(prepared) == 3 and prepared[0] == 32 and prepared[1] < 32


def test_schedule_plan_replays_to_the_same_model() -> None:
    net = mlp()
    out = Iterative(0.5, steps=3).run(prunekit.Pruner(net, X, importance="l1"))
    plan = SchedulePlan.from_json(out.plan.to_json())
    replay = plan.apply(net, X)
    with torch.no_grad():
        assert torch.equal(replay(X), out.model(X))
    assert plan.num_removed == sum(p.num_removed for p in out.plan.steps) > 0
    with pytest.raises(PlanError, match="schedule"):
        SchedulePlan.from_dict({"removed": {}})


def test_hierarchical_goes_deepest_first() -> None:
    out = Hierarchical(0.5, stages=2).run(prunekit.Pruner(mlp(), X))
    assert [list(p.removed) for p in out.plan.steps] == [["2.weight:0"], ["0.weight:0"]]
    assert out.model[0].out_features == 16 and out.model[2].out_features == 16


def test_one_shot_equals_prune() -> None:
    net = mlp()
    out = OneShot(0.25).run(prunekit.Pruner(net, X))
    assert out.plan.steps[0].removed == prunekit.prune(net, X, ratio=0.25).plan.removed
