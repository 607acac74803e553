"""The search's defaults: the strategies it compares, the finishing before ``recover``
(compensation + BN re-estimation), cross-validation as a constraint, shared scores."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import prunekit.search.defaults as defaults_module
from prunekit.errors import ConfigError
from prunekit.graph.dependency import DependencyGraph, Group
from prunekit.importance import Criterion
from prunekit.search import InfeasibleSearchError, Strategy, search
from prunekit.search.defaults import default_strategies, resolve_finishing

Recover = Callable[[nn.Module], nn.Module]


def _calib(digits: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(digits.xt[i : i + 128], digits.yt[i : i + 128]) for i in range(0, 512, 128)]


def test_default_strategies_add_a_data_driven_criterion_when_data_is_given(
    trained: nn.Module, digits: Any
) -> None:
    x = digits.xt[:2]
    plain = search(trained, x, metric=digits.accuracy, tolerance=0.03, after_cut=digits.calibrate,
                   steps=2, progress=False)  # fmt: skip
    assert plain.tried == ["l2-global", "l2-local"] and plain.default_strategies
    assert plain.finishing["compensate"] is False and "no data=" in plain.finishing["reason"]

    res = search(trained, x, metric=digits.accuracy, tolerance=0.03, data=_calib(digits),
                 steps=2, progress=False)  # fmt: skip
    names = ["l2-global", "l2-local", "reconstruction-global", "reconstruction-local"]
    assert res.tried == names and res.default_strategies
    assert [s["scope"] for s in res.strategies] == ["global", "local"] * 2
    assert {s["importance"] for s in res.strategies[2:]} == {
        "prunekit.importance.reconstruction.Reconstruction"
    }
    # every strategy was measured (max_ratio, then 2 bisection steps each)
    assert {p.strategy for p in res.points} == set(names)
    assert all(sum(p.strategy == n for p in res.points) == 3 for n in names)
    text = str(res)
    assert "strategies compared (the defaults): " + ", ".join(names) in text
    assert "every candidate: cut -> compensate -> reestimate_bn -> after_cut -> recover" in text
    record = json.loads(json.dumps(res.to_dict()))
    assert record["default_strategies"] is True
    assert [s["name"] for s in record["strategies"]] == names
    assert record["finishing"]["order"] == [
        "cut", "compensate", "reestimate_bn", "after_cut", "recover"
    ]  # fmt: skip
    # strategies given explicitly are not "the defaults"
    given = search(trained, x, metric=digits.accuracy, tolerance=0.03, data=_calib(digits),
                   strategies=[Strategy()], steps=1, progress=False)  # fmt: skip
    assert given.tried == ["l2-global"] and not given.default_strategies
    assert "(the defaults)" not in str(given)


def test_compensation_and_bn_reestimation_run_before_after_cut_and_recover(
    trained: nn.Module, digits: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_compensate, real_bn = defaults_module.compensate, defaults_module.reestimate_bn

    def compensate(pruned: nn.Module, original: nn.Module, data: Any, **kw: Any) -> Any:
        report = real_compensate(pruned, original, data, **kw)
        assert original is trained  # one-step cuts are refit against the unpruned model
        events.append("compensate" if report.updated else "compensate (nothing refit)")
        return report

    def bn(model: nn.Module, data: Any, **kw: Any) -> int:
        events.append("reestimate_bn")
        return int(real_bn(model, data, **kw))

    monkeypatch.setattr(defaults_module, "compensate", compensate)
    monkeypatch.setattr(defaults_module, "reestimate_bn", bn)

    def recover(m: nn.Module) -> nn.Module:
        events.append("recover")
        return digits.fit(m, epochs=1, lr=0.01)

    res = search(trained, digits.xt[:2], metric=digits.accuracy, tolerance=0.03,
                 data=_calib(digits), strategies=[Strategy()], after_cut=lambda m: events.append("after_cut"),
                 recover=recover, steps=2, progress=False)  # fmt: skip
    candidate = ["compensate", "reestimate_bn", "after_cut", "recover"]
    built = len([p for p in res.points if p.duplicate_of is None])
    assert built >= 3
    # the points, then the chosen model rebuilt or kept: each one finished in this order
    assert len(events) % 4 == 0 and len(events) // 4 >= built
    assert [events[i : i + 4] for i in range(0, len(events), 4)] == [candidate] * (len(events) // 4)
    assert res.finishing["compensate"] is True and res.finishing["asked"] == "auto"

    events.clear()
    off = search(trained, digits.xt[:2], metric=digits.accuracy, tolerance=0.03,
                 data=_calib(digits), strategies=[Strategy()], compensate=False, recover=recover,
                 steps=1, progress=False)  # fmt: skip
    assert "compensate" not in events and events[:2] == ["reestimate_bn", "recover"]
    assert off.finishing["order"] == ["cut", "reestimate_bn", "after_cut", "recover"]


def test_compensate_switch_is_validated() -> None:
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    data = [torch.randn(16, 4)]
    with pytest.raises(ConfigError, match="compensate=True needs calibration batches"):
        search(net, data[0][:1], metric=lambda m: 1.0, tolerance=0.1, compensate=True,
               progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match="must be 'auto', True or False"):
        search(net, data[0][:1], metric=lambda m: 1.0, tolerance=0.1, compensate="yes",
               progress=False)  # fmt: skip
    # no layer a handler can refit (depthwise convolutions): "auto" leaves it off, True raises
    dw = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.ReLU(), nn.Conv2d(4, 4, 1, groups=4))
    imgs = [torch.randn(4, 4, 6, 6)]
    assert resolve_finishing(dw, imgs, "auto").compensate is False
    assert "no layer can be refit" in resolve_finishing(dw, imgs, "auto").reason
    with pytest.raises(ConfigError, match="no layer of Sequential can be refit"):
        resolve_finishing(dw, imgs, True)
    assert [s.name for s in default_strategies(None)] == ["l2-global", "l2-local"]


def _width_folds(min_width: int) -> list[Callable[[nn.Module], float]]:
    """Two folds: one passes any model, the other only models whose first layer keeps
    ``min_width`` units (a constructed generalisation failure)."""

    def fold_wide(m: nn.Module) -> float:
        return 1.0 if m[0].out_features >= min_width else 0.0

    def fold_any(m: nn.Module) -> float:
        return 1.0

    return [fold_wide, fold_any]


def test_regression_cv_mean_below_the_tolerance_floor_is_not_satisfied() -> None:
    """A candidate within the tolerance on ``metric`` but whose cross-validated mean falls
    more than ``tolerance`` below the unpruned model's must not be chosen (cv_metrics used to
    be reported on the chosen model only)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
    x = torch.randn(1, 4)
    free = search(net, x, metric=lambda m: 1.0, tolerance=0.1, max_ratio=0.9, steps=4,
                  progress=False)  # fmt: skip
    assert free.model[0].out_features < 16  # the metric alone allows a narrow model
    res = search(net, x, metric=lambda m: 1.0, tolerance=0.1, max_ratio=0.9, steps=4,
                 cv_metrics=_width_folds(16), progress=False)  # fmt: skip
    assert res.baseline.cv_mean == 1.0
    assert res.model[0].out_features >= 16 and res.best.cv_mean == 1.0
    rejected = [p for p in res.points if p.metric == 1.0 and not p.satisfied]
    assert rejected and all(p.cv_mean == 0.5 for p in rejected)  # below the floor 0.9
    assert all(p.satisfied == (p.cv_mean is not None and p.cv_mean >= 0.9) for p in res.points)
    assert res.cv is not None and res.cv.mean == 1.0
    header = next(line for line in str(res).split("\n") if line.startswith("strategy "))
    assert header.split()[-2:] == ["cv", "ok"]


def test_cv_constraint_reports_why_nothing_was_feasible() -> None:
    net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))
    with pytest.raises(InfeasibleSearchError, match="cross-validation folds"):
        search(net, torch.randn(1, 4), metric=lambda m: 1.0, tolerance=0.1, steps=2,
               cv_metrics=_width_folds(32), progress=False)  # fmt: skip


class _Counting(Criterion):
    """A data-driven stand-in: counts ``prepare`` and scoring calls (scores: the unit index)."""

    requires_data = True

    def __init__(self) -> None:
        self.prepared = 0
        self.scored = 0

    def prepare(self, model: nn.Module, graph: DependencyGraph) -> None:
        self.prepared += 1

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        self.scored += 1
        return torch.arange(group.num_units, dtype=torch.float32)


def test_data_driven_scores_are_computed_once_per_search() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
    crit = _Counting()
    strategies = [Strategy("c-global", crit), Strategy("c-local", crit, "local")]
    res = search(net, torch.randn(1, 4), metric=lambda m: 1.0 if m[0].out_features > 8 else 0.0,
                 tolerance=0.0, strategies=strategies, steps=3, progress=False)  # fmt: skip
    assert len(res.points) >= 6
    assert crit.prepared == 1 and crit.scored == 2  # two groups, scored once for 2 strategies
    assert res.model[0].out_features > 8
    assert res.plan.meta["importance"] == "_Counting"  # the criterion, not its score cache


def test_guard_recover_keeps_the_candidate_when_recover_lowers_the_metric(
    trained: nn.Module, digits: Any, tmp_path: Any
) -> None:
    """A recover that spoils the model (zeroes the classifier) is measured and refused: the
    point's metric is the one before recover and the returned model is that model; a rerun
    from the checkpoint rebuilds it without measuring again."""

    def spoil(m: nn.Module) -> None:
        nn.init.zeros_(m[6].weight)

    calls: list[int] = []

    def metric(m: nn.Module) -> float:
        calls.append(1)
        return digits.accuracy(m)

    kw: dict[str, Any] = dict(metric=metric, tolerance=0.03, data=_calib(digits),
                              strategies=[Strategy()], recover=spoil, steps=2, progress=False)  # fmt: skip
    res = search(trained, digits.xt[:2], checkpoint=tmp_path, **kw)
    assert res.finishing["guard_recover"] is True
    built = [p for p in res.points if p.duplicate_of is None]
    assert all(p.recovered == [False] for p in built)
    assert len(calls) == 1 + 2 * len(built)  # baseline, then before and after each recover
    assert res.best.metric > 0.9 and digits.accuracy(res.model) == res.best.metric
    assert bool(res.model[6].weight.abs().sum() > 0)
    assert any("recover lowered the metric of" in n for n in res.notes)
    assert "(kept where it did not lower the metric)" in str(res)

    calls.clear()
    again = search(trained, digits.xt[:2], checkpoint=tmp_path, **kw)
    assert calls == [] and torch.equal(again.model[6].weight, res.model[6].weight)

    # unguarded, every candidate is measured spoiled (chance accuracy): nothing is feasible
    with pytest.raises(InfeasibleSearchError) as info:
        search(trained, digits.xt[:2], guard_recover=False, **{**kw, "metric": digits.accuracy})
    assert all(p.recovered == [True] and (p.metric or 0) < 0.2 for p in info.value.points)
