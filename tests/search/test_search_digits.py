"""Searches on a BN MLP trained on sklearn's digits: tolerance, budgets, strategies."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest
import torch
from torch import nn

import prunekit
from prunekit.evaluation import analyze_sensitivity, count_macs, count_params
from prunekit.schedule import SchedulePlan
from prunekit.search import Budget, InfeasibleSearchError, SearchResult, Strategy, search

Recover = Callable[[nn.Module], nn.Module]


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_tolerance_search_returns_a_smaller_model_within_tolerance(
    trained: nn.Module, digits, recover: Recover
) -> None:
    before = copy.deepcopy(trained.state_dict())
    x = digits.xt[:2]
    res = search(trained, x, metric=digits.accuracy, tolerance=0.02, after_cut=digits.calibrate,
                 recover=recover, steps=5, progress=False)  # fmt: skip
    base, best = res.baseline, res.best
    assert base.metric == pytest.approx(digits.accuracy(trained)) and base.metric > 0.9
    assert (base.params, base.macs) == (count_params(trained), count_macs(trained, x))
    # the returned model is the chosen point: same metric, same cost, within tolerance
    assert best.satisfied and best.metric >= base.metric - 0.02
    assert digits.accuracy(res.model) == best.metric
    assert (count_params(res.model), count_macs(res.model, x)) == (best.params, best.macs)
    assert best.macs < 0.8 * base.macs
    # every point is honest about the constraint; the best is the smallest satisfying one
    for p in res.points:
        assert p.satisfied == (p.metric >= base.metric - 0.02)
    assert best.macs == min(p.macs for p in res.points if p.satisfied)
    # the default strategies without data= (l2, global and local): per strategy max_ratio,
    # then at most 5 bisection steps
    assert res.tried == ["l2-global", "l2-local"] and res.default_strategies
    for name in res.tried:
        assert 2 <= sum(p.strategy == name for p in res.points) <= 6
    # the plan replays to the same architecture; the input model is untouched
    assert _shapes(res.plan.apply(trained, x)) == _shapes(res.model)
    assert all(torch.equal(before[k], v) for k, v in trained.state_dict().items())
    json.dumps(res.to_dict())
    assert "l2-global" in str(res)


def test_budget_search_lands_at_the_budget_and_picks_the_best_strategy(
    trained: nn.Module, digits, recover: Recover
) -> None:
    x = digits.xt[:2]
    strategies = [Strategy(), Strategy(scope="local"), Strategy(importance="random")]
    res = search(trained, x, metric=digits.accuracy, budget=Budget(macs=0.4),
                 strategies=strategies, after_cut=digits.calibrate, recover=recover,
                 steps=7, progress=False)  # fmt: skip
    target = int(0.4 * res.baseline.macs)
    final = {p.strategy: p for p in res.points if p.kind == "evaluated"}
    assert sorted(final) == sorted(s.name for s in strategies)
    for p in final.values():
        assert p.satisfied and p.macs <= target
    # prune's own budget search (global) lands within a couple of units of the target;
    # bisection on the ratio (local) within its resolution
    assert final["l2-global"].macs >= 0.95 * target
    assert final["l2-local"].macs >= 0.85 * target
    assert res.best == max(final.values(), key=lambda p: p.metric)
    assert set(res.curve()) == set(final)
    trials = [p for p in res.points if p.kind == "trial"]
    assert trials and {p.strategy for p in trials} == {"l2-local"}
    assert all(p.metric is None for p in trials)
    assert digits.accuracy(res.model) == res.best.metric


def test_params_and_latency_budgets(trained: nn.Module, digits, recover: Recover) -> None:
    x = digits.xt[:2]
    res = search(trained, x, metric=digits.accuracy, budget=Budget(params=2000),
                 after_cut=digits.calibrate, recover=recover, progress=False)  # fmt: skip
    assert res.best.params <= 2000 and count_params(res.model) == res.best.params

    def latency(m: nn.Module) -> float:  # deterministic stand-in: 1 ns per MAC
        return count_macs(m, x) * 1e-9

    res = search(trained, x, metric=digits.accuracy,
                 budget=Budget(latency=latency(trained) / 2, latency_fn=latency),
                 after_cut=digits.calibrate, recover=recover, steps=6, progress=False)  # fmt: skip
    assert res.baseline.latency == pytest.approx(latency(trained))
    assert res.best.latency is not None and res.best.latency <= latency(trained) / 2
    assert res.best.latency == pytest.approx(latency(res.model))
    assert res.best.latency >= 0.4 * latency(trained)
    assert all(p.latency is not None for p in res.points)


def test_finishing_order_and_iterative_schedule(trained: nn.Module, digits) -> None:
    events: list[str] = []

    def calibrate(m: nn.Module) -> None:
        events.append("calibrate")
        digits.calibrate(m)

    def recover(m: nn.Module) -> nn.Module:
        events.append("recover")
        return digits.fit(m, epochs=1)

    def metric(m: nn.Module) -> float:
        events.append("metric")
        return digits.accuracy(m)

    x = digits.xt[:2]
    res = search(trained, x, metric=metric, tolerance=0.03, after_cut=calibrate,
                 recover=recover, steps=2, schedule_steps=2, progress=False)  # fmt: skip
    # guard_recover (default): every step is measured before and after its recover; the
    # last step's measurement is the point's metric
    step = ["calibrate", "metric", "recover", "metric"]
    cycle = step + step
    assert events[0] == "metric"  # the unpruned baseline, never calibrated or recovered
    evaluated = [p for p in res.points if p.duplicate_of is None]
    assert events[1:] == cycle * len(evaluated)
    assert isinstance(res.plan, SchedulePlan) and len(res.plan.steps) == 2
    assert _shapes(res.plan.apply(trained, x)) == _shapes(res.model)
    assert res.best.removed == pytest.approx(res.best.ratio, abs=0.02)


def test_sensitivity_strategy_and_capped_strategy(
    trained: nn.Module, digits, recover: Recover
) -> None:
    x = digits.xt[:2]
    sens = analyze_sensitivity(trained, x, digits.accuracy, ratios=(0.25, 0.5, 0.75, 0.9))
    strategies = [Strategy.from_sensitivity(sens), Strategy("capped", max_group_ratio=0.1)]
    res = search(trained, x, metric=digits.accuracy, budget=Budget(macs=0.5),
                 strategies=strategies, after_cut=digits.calibrate, recover=recover,
                 steps=6, progress=False)  # fmt: skip
    assert res.best.strategy == "l2-sensitivity" and res.best.macs <= res.baseline.macs // 2
    assert any("'capped' cannot reach the budget" in n for n in res.notes)
    assert not any(p.satisfied for p in res.points if p.strategy == "capped")


def test_cross_validated_metric_of_the_chosen_point(
    trained: nn.Module, digits, recover: Recover
) -> None:
    folds = [slice(0, 120), slice(120, 240), slice(240, 360)]

    def fold_metric(s: slice) -> Callable[[nn.Module], float]:
        def acc(m: nn.Module) -> float:
            with torch.no_grad():
                return float((m(digits.xv[s]).argmax(1) == digits.yv[s]).float().mean())

        return acc

    res = search(trained, digits.xt[:2], metric=digits.accuracy, budget=Budget(macs=0.5),
                 cv_metrics=[fold_metric(s) for s in folds], after_cut=digits.calibrate,
                 recover=recover, progress=False)  # fmt: skip
    assert res.cv is not None
    values = [fold_metric(s)(res.model) for s in folds]
    assert res.cv.values == values
    mean = sum(values) / 3
    assert res.cv.mean == pytest.approx(mean)
    assert res.cv.std == pytest.approx((sum((v - mean) ** 2 for v in values) / 2) ** 0.5)
    assert res.cv.mean == pytest.approx(res.best.metric, abs=1e-4)  # equal folds of val


def test_infeasible_tolerance_raises_with_the_points() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))

    def full_width_only(m: nn.Module) -> float:
        return 1.0 if m[0].out_features == 16 else 0.0

    with pytest.raises(InfeasibleSearchError, match="no candidate met tolerance=0.0") as info:
        search(net, torch.randn(1, 4), metric=full_width_only, tolerance=0.0, steps=3,
               progress=False)  # fmt: skip
    # max_ratio and 3 bisection steps for each default strategy (l2, global and local)
    assert [p.metric for p in info.value.points] == [0.0] * 8
    assert [p.strategy for p in info.value.points] == ["l2-global"] * 4 + ["l2-local"] * 4


def test_bisection_on_a_synthetic_metric_by_hand() -> None:
    """Local scope on 100 hidden units: ratio r removes floor(100 r); pass iff >= 50 kept."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 100), nn.ReLU(), nn.Linear(100, 2))
    calls: list[int] = []

    def metric(m: nn.Module) -> float:
        calls.append(m[0].out_features)
        return 1.0 if m[0].out_features >= 50 else 0.0

    res = search(net, torch.randn(1, 4), metric=metric, tolerance=0.5, max_ratio=0.9, steps=4,
                 strategies=[Strategy(scope="local")], progress=False)  # fmt: skip
    # 0.9 keeps 10 (no); 0.45 keeps 55 (yes); 0.675 keeps 33; 0.5625 keeps 44; 0.50625 keeps 50
    assert [p.ratio for p in res.points] == [0.9, 0.45, 0.675, 0.5625, 0.50625]
    assert calls == [100, 10, 55, 33, 44, 50]
    assert res.best.ratio == 0.50625 and res.model[0].out_features == 50
    assert isinstance(res, SearchResult) and res.notes == []


def test_caller_random_state_is_restored(trained: nn.Module, digits, recover: Recover) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    search(trained, digits.xt[:2], metric=digits.accuracy, budget=Budget(macs=0.6),
           recover=recover, seed=7, progress=False)  # fmt: skip
    assert torch.equal(torch.rand(3), expected)


def test_prunekit_prune_matches_the_recorded_plan(trained: nn.Module, digits) -> None:
    """A one-step point's plan is exactly what prunekit.prune cuts at that ratio."""
    x = digits.xt[:2]
    res = search(trained, x, metric=digits.accuracy, tolerance=0.05, steps=2, progress=False)
    scope = next(s["scope"] for s in res.strategies if s["name"] == res.best.strategy)
    again = prunekit.prune(trained, x, ratio=res.best.ratio, scope=scope)
    assert again.plan.removed == res.plan.removed


def test_module_ratios_strategy_keeps_its_fixed_ratio(
    trained: nn.Module, digits, recover: Recover
) -> None:
    """A fixed per-module ratio wins over the searched ratio: 10% of 64 -> 6 units cut."""
    st = Strategy("first-layer-fixed", module_ratios={"0": 0.1})
    res = search(trained, digits.xt[:2], metric=digits.accuracy, budget=Budget(macs=0.75),
                 strategies=[st], after_cut=digits.calibrate, recover=recover, steps=5,
                 progress=False)  # fmt: skip
    assert res.model[0].out_features == 58 and res.model[1].num_features == 58
    # batch 2: 2 (64*58 + 58 w + 10 w) <= 0.75 * 12928 needs w <= 16 in the second layer
    assert res.model[3].out_features <= 16
    assert res.best.macs <= int(0.75 * res.baseline.macs) and res.best.satisfied
