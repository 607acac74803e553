"""Schedules by name from prunekit.prune(): registry errors, results, callbacks, replay."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ConfigError, RegistryError
from prunekit.schedule import (
    Iterative,
    OneShot,
    ScheduleResult,
    available_schedules,
    get_schedule,
    register_schedule,
)

X = torch.randn(2, 4)


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2)
    )


def test_registry_names_and_errors() -> None:
    assert available_schedules() == ["hierarchical", "iterative", "oneshot"]
    with pytest.raises(RegistryError, match="hierarchical, iterative, oneshot"):
        get_schedule("gradual", 0.5)
    with pytest.raises(RegistryError, match="already registered"):
        register_schedule("iterative", lambda r, s, ramp, cb: OneShot(r))
    with pytest.raises(RegistryError, match="run"):
        get_schedule(42, 0.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs ratio"):
        get_schedule("iterative")
    sched = get_schedule("iterative", 0.5, steps=3, ramp="linear")
    assert isinstance(sched, Iterative) and (sched.steps, sched.ramp) == (3, "linear")


def test_prune_with_iterative_schedule_re_scores_and_calls_back() -> None:
    seen: list[tuple[int, int]] = []
    res = prunekit.prune(
        mlp(), X, ratio=0.5, schedule="iterative", steps=4, ramp="linear",
        callback=lambda m, t: seen.append((t, m[0].out_features)),
    )  # fmt: skip
    assert isinstance(res, ScheduleResult)
    # linear ramp of 64 units: 8 per step, split over two 32-unit groups
    assert seen == [(0, 28), (1, 24), (2, 20)]
    assert [p.num_removed for p in res.plan.steps] == [8, 8, 8, 8]
    assert res.model[0].out_features == res.model[2].out_features == 16
    summary = res.summary()
    assert summary.widths == [("0.weight:0", 32, 16), ("2.weight:0", 32, 16)]
    assert summary.before.params == 4 * 32 + 32 + 32 * 32 + 32 + 32 * 2 + 2
    assert summary.after.params == 4 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2
    assert res.to_dict()["summary"]["widths"][0] == ["0.weight:0", 32, 16]
    replay = prunekit.schedule.SchedulePlan.from_json(res.plan.to_json()).apply(mlp(), X)
    with torch.no_grad():
        assert torch.equal(replay(X), res.model(X))


def test_named_and_object_schedules_match() -> None:
    by_name = prunekit.prune(mlp(), X, ratio=0.5, schedule="hierarchical")
    by_object = prunekit.prune(mlp(), X, schedule=prunekit.schedule.Hierarchical(0.5))
    assert [p.removed for p in by_name.plan.steps] == [p.removed for p in by_object.plan.steps]
    assert [list(p.removed) for p in by_name.plan.steps] == [["2.weight:0"], ["0.weight:0"]]
    one = prunekit.prune(mlp(), X, ratio=0.25, schedule="oneshot")
    assert one.plan.steps[0].removed == prunekit.prune(mlp(), X, ratio=0.25).plan.removed


def test_schedule_ramps_a_budget() -> None:
    # a named schedule ramps the whole spec; a MACs budget reaches its target at the last step
    res = prunekit.prune(mlp(), X, schedule="iterative", steps=3, ramp="linear", target_macs=0.5)
    assert isinstance(res, prunekit.PruneResult) and len(res.plan.steps) == 3
    targets = [p.meta["target_macs"] for p in res.plan.steps]
    assert targets == pytest.approx([5 / 6, 2 / 3, 0.5])
    assert res.after.macs <= res.before.macs // 2
    with pytest.raises(ConfigError, match="its own ratio"):
        prunekit.prune(mlp(), X, schedule=Iterative(0.5), target_macs=0.5)


def test_schedule_argument_errors() -> None:
    with pytest.raises(ConfigError, match="needs ratio"):
        prunekit.prune(mlp(), X, schedule="iterative")
    with pytest.raises(ConfigError, match="its own ratio"):
        prunekit.prune(mlp(), X, ratio=0.5, schedule=Iterative(0.5))
    with pytest.raises(ConfigError, match="need a schedule"):
        prunekit.prune(mlp(), X, ratio=0.5, steps=3)
    with pytest.raises(ConfigError, match="outside"):
        prunekit.prune(mlp(), X, ratio=1.5, schedule="iterative")
    with pytest.raises(ConfigError, match="ramp"):
        prunekit.prune(mlp(), X, ratio=0.5, schedule="iterative", ramp="quadratic")
