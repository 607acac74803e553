"""Agreement, error flips, stability report, spread over runs and stratified k folds."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
import torch

from prunekit.errors import ConfigError
from prunekit.evaluation import (
    Flip,
    StabilityReport,
    agreement,
    error_flips,
    kfold_indices,
    metric_spread,
    metric_spreads,
    stability,
)

TARGETS = [0, 1, 2, 0, 1, 2]
REF = [0, 1, 2, 1, 1, 0]  # right at 0, 1, 2, 4
PRUNED = [0, 2, 2, 0, 1, 1]  # right at 0, 2, 3, 4


def test_agreement_and_flips_on_a_constructed_case() -> None:
    assert agreement(PRUNED, REF) == pytest.approx(3 / 6)  # same at 0, 2, 4
    flips = error_flips(PRUNED, REF, TARGETS)
    assert flips.newly_wrong == [Flip(index=1, target=1, pred=2, reference_pred=1)]
    assert flips.newly_right == [Flip(index=3, target=0, pred=0, reference_pred=1)]
    assert flips.newly_wrong_indices == [1] and flips.newly_right_indices == [3]
    # index 5 is wrong for both: not a flip


def test_stability_report_with_logits() -> None:
    pruned = torch.nn.functional.one_hot(torch.tensor(PRUNED), 3).float() * 2.0
    ref = torch.nn.functional.one_hot(torch.tensor(REF), 3).float() * 4.0
    s = stability(pruned, ref, TARGETS)
    assert s.agreement == pytest.approx(0.5)
    assert s.accuracy == pytest.approx(4 / 6) and s.reference_accuracy == pytest.approx(4 / 6)
    n = s.num_samples
    assert s.accuracy - s.reference_accuracy == pytest.approx(
        (len(s.flips.newly_right) - len(s.flips.newly_wrong)) / n
    )
    # softmax of (2, 0, 0): e^2 / (e^2 + 2)
    e2, e4 = float(np.exp(2.0)), float(np.exp(4.0))
    assert s.mean_confidence == pytest.approx(e2 / (e2 + 2))
    assert s.reference_mean_confidence == pytest.approx(e4 / (e4 + 2))
    # every sample sits in one bin: ECE = |accuracy - confidence|
    assert s.ece == pytest.approx(abs(4 / 6 - e2 / (e2 + 2)))
    restored = StabilityReport.from_dict(json.loads(json.dumps(s.to_dict())))
    assert restored == s


def test_stability_without_targets_or_logits() -> None:
    s = stability(PRUNED, REF)
    assert s.agreement == pytest.approx(0.5)
    assert s.flips is None and s.accuracy is None and s.mean_confidence is None
    # different logits, same argmax everywhere: full agreement, confidences differ
    same = stability(torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[5.0, 1.0], [1.0, 3.0]]))
    assert same.agreement == 1.0 and same.ece is None
    assert same.mean_confidence < same.reference_mean_confidence
    with pytest.raises(ConfigError, match="rows"):
        stability(PRUNED, REF[:3])


def test_metric_spread_by_hand() -> None:
    s = metric_spread([1.0, 2.0, 3.0, 4.0])
    assert s.mean == 2.5 and s.min == 1.0 and s.max == 4.0 and s.n == 4
    assert s.std == pytest.approx(statistics.stdev([1.0, 2.0, 3.0, 4.0]))  # sqrt(5/3)
    assert s.std == pytest.approx((5 / 3) ** 0.5)
    assert metric_spread([0.7]).std == 0.0
    assert json.loads(json.dumps(s.to_dict()))["n"] == 4
    with pytest.raises(ConfigError, match="no values"):
        metric_spread([])
    with pytest.raises(ConfigError, match="non-finite"):
        metric_spread([1.0, float("nan")])


def test_metric_spreads_over_runs() -> None:
    runs = [{"acc": 0.9, "f1": 0.8, "extra": 1.0}, {"acc": 0.8, "f1": 0.6}]
    spreads = metric_spreads(runs)
    assert set(spreads) == {"acc", "f1"}
    assert spreads["f1"].mean == pytest.approx(0.7)


def test_kfold_stratified_partition() -> None:
    labels = np.array([0] * 11 + [1] * 7 + [2] * 5)  # 23 samples, imbalanced
    folds = kfold_indices(len(labels), 5, seed=3, labels=labels)
    assert len(folds) == 5
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals.tolist()) == list(range(23))  # the validation parts partition range(n)
    sizes = [len(v) for _, v in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, val in folds:
        assert sorted(np.concatenate([train, val]).tolist()) == list(range(23))
        assert not set(train.tolist()) & set(val.tolist())
        assert train.dtype == np.int64 and (np.diff(val) > 0).all()
    for c, n_c in ((0, 11), (1, 7), (2, 5)):
        per_fold = [int((labels[v] == c).sum()) for _, v in folds]
        assert set(per_fold) <= {n_c // 5, -(-n_c // 5)}  # floor or ceil of n_c / k


def test_kfold_deterministic_and_plain() -> None:
    a = kfold_indices(20, 4, seed=1)
    b = kfold_indices(20, 4, seed=1)
    c = kfold_indices(20, 4, seed=2)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c))
    assert [len(v) for _, v in a] == [5, 5, 5, 5]


def test_kfold_errors() -> None:
    with pytest.raises(ConfigError, match="k=1"):
        kfold_indices(10, 1)
    with pytest.raises(ConfigError, match="k=11"):
        kfold_indices(10, 11)
    with pytest.raises(ConfigError, match="one class label per sample"):
        kfold_indices(10, 2, labels=[0, 1])
