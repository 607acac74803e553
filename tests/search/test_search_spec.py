"""Budget / Strategy / result plumbing and argument validation, hand-checked."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError, PrunekitError
from prunekit.evaluation import Sensitivity
from prunekit.plan import PruningPlan
from prunekit.search import Budget, CrossValidation, SearchPoint, Strategy, search
from prunekit.search.bisect import largest_passing, smallest_fitting
from prunekit.search.candidate import removed_fraction, step_fraction
from prunekit.search.search import monotone_note


def test_budget_resolves_fractions_and_counts() -> None:
    assert Budget(macs=0.25).target(1000) == 250
    assert Budget(params=0.5).target(999) == 499  # int(499.5)
    assert Budget(macs=300).target(1000) == 300
    assert Budget(params=1.0).target(1000) == 1  # 1.0 is a count, not "keep everything"
    assert Budget(latency=0.004, latency_fn=lambda m: 0.0).target(0.01) == 0.004
    assert Budget(params=300).metric == "params"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "exactly one of macs=, params=, latency="),
        ({"macs": 0.5, "params": 0.5}, "exactly one"),
        ({"macs": -1}, "positive"),
        ({"macs": True}, "positive"),
        ({"params": math.nan}, "positive"),
        ({"latency": 0.01}, "latency_fn"),
    ],
)
def test_budget_rejects_bad_values(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Budget(**kwargs)


def test_strategy_defaults_and_validation() -> None:
    assert Strategy().name == "l2-global"
    assert Strategy(importance="random", scope="local").name == "random-local"
    assert Strategy().is_plain_global and not Strategy(scope="local").is_plain_global
    assert not Strategy(module_ratios={"0": 0.2}).is_plain_global
    with pytest.raises(ConfigError, match="scope='layer'"):
        Strategy(scope="layer")
    with pytest.raises(ConfigError, match="round_to=0"):
        Strategy(round_to=0)
    with pytest.raises(ConfigError, match="max_group_ratio=1.5"):
        Strategy(max_group_ratio=1.5)
    with pytest.raises(ConfigError, match=r"module_ratios\['fc'\]=1.2"):
        Strategy(module_ratios={"fc": 1.2})
    with pytest.raises(PrunekitError, match="unknown importance 'nope'"):
        Strategy(importance="nope")


def _sensitivity() -> Sensitivity:
    # group a: free to cut up to 6 of 8 units; group b: every cut costs (drop 0.2 / 0.5).
    return Sensitivity(
        base=1.0, ratios=[0.25, 0.75], sizes={"a": 8, "b": 8}, modules={"a": ["0"], "b": ["2"]},
        metrics={"a": {0.25: 1.0, 0.75: 1.0}, "b": {0.25: 0.8, 0.75: 0.5}},
        removed={"a": {0.25: 2, 0.75: 6}, "b": {0.25: 2, 0.75: 6}}, meta={"importance": "l1"},
    )  # fmt: skip


def test_sensitivity_strategy_allocates_by_measured_drop() -> None:
    st = Strategy.from_sensitivity(_sensitivity(), name="sens")
    assert (st.name, st.importance) == ("sens", "l1")
    # 25% of 16 units = 4: all from the free group a (drop 0 up to 6 units).
    assert st.group_ratios(0.25) == {"a": 0.5, "b": 0.0}
    # the measured cuts reach 12 of 16 units
    assert st.max_search_ratio(0.95) == 0.75 and st.max_search_ratio(0.5) == 0.5
    assert Strategy().group_ratios(0.3) is None
    with pytest.raises(ConfigError, match="Sensitivity"):
        Strategy.from_sensitivity({"a": 1})  # type: ignore[arg-type]


def test_step_fraction_and_removed_fraction_by_hand() -> None:
    # 60% in 3 linear steps: 20% of all, then 20/80 = 25% of the rest, then 20/60 = 1/3
    assert [round(step_fraction(0.6, t, 3), 9) for t in (1, 2, 3)] == [0.2, 0.25, 0.333333333]
    first = PruningPlan({"g": [0, 1, 2]}, {"g": 10, "h": 10})
    second = PruningPlan({"g": [0], "h": [1, 2, 3]}, {"g": 7, "h": 10})
    assert removed_fraction([first]) == pytest.approx(3 / 20)
    assert removed_fraction([first, second]) == pytest.approx(1 - (17 - 4) / 20)


def test_bisection_paths_by_hand() -> None:
    tried: list[float] = []

    def passes(r: float) -> bool:
        tried.append(r)
        return r <= 0.6

    assert largest_passing(passes, 1.0, 3) == 0.5
    assert tried == [1.0, 0.5, 0.75, 0.625]
    assert largest_passing(lambda r: True, 0.8, 3) == 0.8
    assert largest_passing(lambda r: False, 0.8, 3) is None
    assert smallest_fitting(lambda r: r >= 0.5, 1.0, 2, zero_fits=False) == 0.5
    assert smallest_fitting(lambda r: r >= 0.6, 1.0, 3, zero_fits=False) == 0.625
    assert smallest_fitting(lambda r: False, 1.0, 3, zero_fits=True) == 0.0


def test_cross_validation_mean_and_sample_std() -> None:
    cv = CrossValidation.of([0.9, 0.8, 0.7, 1.0])
    # mean 0.85; deviations .05 -.05 -.15 .15 -> sum of squares .05; /3 -> sqrt
    assert cv.mean == pytest.approx(0.85)
    assert cv.std == pytest.approx(math.sqrt(0.05 / 3))
    assert cv.std == pytest.approx(float(np.std([0.9, 0.8, 0.7, 1.0], ddof=1)))
    assert CrossValidation.of([0.5]).std == 0.0


def test_monotone_note_only_when_a_smaller_model_passes() -> None:
    def pt(macs: int, ok: bool) -> SearchPoint:
        return SearchPoint("s", "evaluated", 1 - macs / 100, 0, macs, 0.0, ok, 0.0)

    assert monotone_note("s", [pt(90, True), pt(50, False), pt(70, True)]) == []
    note = monotone_note("s", [pt(90, True), pt(70, False), pt(50, True)])
    assert "not monotone" in note[0] and "70 MACs" in note[0] and "50 MACs" in note[0]
    assert monotone_note("other", [pt(70, False), pt(50, True)]) == []


# ----------------------------------------------------------------------- argument errors
def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))


def _one(m: nn.Module) -> float:
    return 1.0


X = torch.randn(1, 4)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({}, ConfigError, "exactly one of tolerance="),
        ({"tolerance": 0.1, "budget": Budget(macs=0.5)}, ConfigError, "exactly one"),
        ({"tolerance": -0.1}, ConfigError, "tolerance=-0.1"),
        ({"tolerance": math.inf}, ConfigError, "finite"),
        ({"budget": {"macs": 0.5}}, ConfigError, "Budget"),
        ({"tolerance": 0.1, "steps": 0}, ConfigError, "steps=0"),
        ({"tolerance": 0.1, "schedule_steps": 1.5}, ConfigError, "schedule_steps=1.5"),
        ({"tolerance": 0.1, "max_ratio": 1.0}, ConfigError, "max_ratio=1.0"),
        ({"tolerance": 0.1, "strategies": []}, ConfigError, "non-empty"),
        ({"tolerance": 0.1, "strategies": ["l2"]}, ConfigError, "Strategy"),
        ({"tolerance": 0.1, "strategies": [Strategy(), Strategy()]}, ConfigError, "l2-global"),
        ({"tolerance": 0.1, "recover": 3}, ConfigError, "recover=3"),
        ({"tolerance": 0.1, "cv_metrics": []}, ConfigError, "cv_metrics"),
        ({"tolerance": 0.1, "seed": "0"}, ConfigError, "seed='0'"),
        ({"tolerance": 0.1, "strategies": [Strategy(ignore=(nn.Linear(2, 2),))]}, ConfigError,
         "not a submodule"),
    ],
)  # fmt: skip
def test_invalid_arguments_raise_clear_errors(kwargs: dict, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        search(_net(), X, metric=_one, progress=False, **kwargs)


def test_bad_metric_values_and_targets_are_named() -> None:
    with pytest.raises(ConfigError, match="metric=3"):
        search(_net(), X, metric=3, tolerance=0.1, progress=False)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="metric returned nan on the unpruned model"):
        search(_net(), X, metric=lambda m: math.nan, tolerance=0.1, progress=False)
    with pytest.raises(ConfigError, match="metric returned 'high'"):
        search(_net(), X, metric=lambda m: "high", tolerance=0.1, progress=False)  # type: ignore[arg-type, return-value]
    with pytest.raises(ConfigError, match="resolves to 0"):
        search(_net(), X, metric=_one, budget=Budget(macs=0.001), progress=False)


def test_checkpoint_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ck"
    path.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        search(_net(), X, metric=_one, tolerance=0.1, checkpoint=path, progress=False)


def test_a_batchnorm_model_without_calibrate_gets_a_warning() -> None:
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2)).eval()
    with pytest.warns(UserWarning, match="after_cut=None"):
        search(net, torch.randn(2, 4), metric=lambda m: 1.0, budget=Budget(params=0.8),
               progress=False)  # fmt: skip


def test_calibrate_is_the_deprecated_name_of_after_cut() -> None:
    """The post-cut hook is ``after_cut`` ("calibration" means a criterion's data); the old
    keyword still works with a DeprecationWarning, and both at once is an error."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    x = torch.randn(4, 8)
    seen: list[int] = []

    def hook(m: torch.nn.Module) -> None:
        seen.append(1)

    def metric(m: torch.nn.Module) -> float:
        return 1.0

    with pytest.warns(
        DeprecationWarning, match=r"search\(calibrate=...\) is now search\(after_cut"
    ):
        search(net, x, metric=metric, budget=Budget(macs=0.5), calibrate=hook, progress=False)
    assert seen  # the old name still reaches the hook
    with pytest.raises(ConfigError, match="after_cut"):
        search(net, x, metric=metric, budget=Budget(macs=0.5), calibrate=hook, after_cut=hook)
