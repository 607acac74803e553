"""Threshold calibration hits its target on constructed examples (numbers by hand)."""

from __future__ import annotations

import pytest
import torch

from prunekit.deploy import Cascade, evaluate_cascade
from prunekit.deploy.thresholds import StageRecord, search_thresholds
from prunekit.errors import DataError, SearchError
from tests.deploy.nets import Lookup, ids, logits_with

# Ten rows. Stage 0's confidence falls row by row; it is wrong on rows 3, 7 and 9.
# Stage 1 (4x the MACs) is right everywhere but row 0. Class 1 ("malignant") = rows 7, 8.
CONF = [0.99, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55]
LABELS = [0, 0, 0, 0, 0, 0, 0, 1, 1, 0]
WRONG0 = {3, 7, 9}


def cascade() -> Cascade:
    small = Lookup(
        [logits_with(p, 1 - y if i in WRONG0 else y) for i, (p, y) in enumerate(zip(CONF, LABELS))],
        cost=2,
    )
    big = Lookup([logits_with(0.9, 1 - y if i == 0 else y) for i, y in enumerate(LABELS)], cost=8)
    return Cascade([small, big], threshold=0.5)


def data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(ids(10)[:6], torch.tensor(LABELS[:6])), (ids(10)[6:], torch.tensor(LABELS[6:]))]


def test_target_accuracy_picks_the_cheapest_threshold_that_reaches_it() -> None:
    c = cascade()
    res = c.calibrate(data(), target_accuracy=1.0)
    # rows 3, 7, 9 must leave stage 0 and row 0 must stay: the lowest such threshold is 0.9
    assert res.thresholds[0] == pytest.approx(0.9, abs=1e-6)
    assert c.thresholds == res.thresholds
    assert res.accuracy == 1.0 and res.fallback_rate == pytest.approx(0.7)
    assert res.macs_per_input == pytest.approx(2 + 8 * 0.7)
    assert res.objective == "min_macs"
    # the cascade routed for real gives what calibration promised
    report = evaluate_cascade(c, data(), latency=False)
    assert report.accuracy == 1.0 and report.fallback_rate == pytest.approx(0.7)
    assert report.macs_spent_per_input == pytest.approx(res.macs_per_input)


def test_one_error_allowed_falls_back_less() -> None:
    res = cascade().calibrate(data(), target_accuracy=0.9)
    # threshold 0.7 sends rows 7, 8, 9 on; row 3 stays wrong: 9 / 10
    assert res.thresholds[0] == pytest.approx(0.7, abs=1e-6)
    assert res.accuracy == pytest.approx(0.9) and res.fallback_rate == pytest.approx(0.3)


def test_max_fallback_rate_takes_the_most_accurate_within_it() -> None:
    res = cascade().calibrate(data(), max_fallback_rate=0.2)
    # 0.6 (row 9 on) and 0.65 (rows 8, 9) both give 8/10; the cheaper one wins
    assert res.thresholds[0] == pytest.approx(0.6, abs=1e-6)
    assert res.accuracy == pytest.approx(0.8) and res.fallback_rate == pytest.approx(0.1)
    assert res.objective == "max_accuracy"


def test_target_recall_on_the_costly_class() -> None:
    res = cascade().calibrate(data(), target_recall={1: 1.0})
    # row 7 (class 1, missed by stage 0) must go on: threshold 0.7
    assert res.thresholds[0] == pytest.approx(0.7, abs=1e-6)
    assert res.recall == {1: 1.0}
    both = cascade().calibrate(data(), target_recall={1: 1.0}, target_accuracy=1.0)
    assert both.thresholds[0] == pytest.approx(0.9, abs=1e-6)


def test_unreachable_target_names_the_best_reached() -> None:
    # within 10% fallback the best is threshold 0.6: rows 3 and 7 stay wrong
    with pytest.raises(SearchError, match=r"target_accuracy=1.0 \(best reached 0.8000\).*"
                       r"max_fallback_rate=0.1"):  # fmt: skip
        cascade().calibrate(data(), target_accuracy=1.0, max_fallback_rate=0.1)


def test_unlabelled_data_needs_a_fallback_rate_goal() -> None:
    unlabelled = [ids(10)]
    with pytest.raises(DataError, match="labelled validation data"):
        cascade().calibrate(unlabelled, target_accuracy=0.9)
    res = cascade().calibrate(unlabelled, max_fallback_rate=0.3)
    assert res.fallback_rate == pytest.approx(0.3) and res.accuracy is None
    assert res.objective == "max_fallback"


def test_three_stage_search_by_hand() -> None:
    # row 0: stage 0 right (0.9); row 1: stage 0 wrong (0.6), stage 1 right (0.9);
    # row 2: stages 0 and 1 wrong (0.7, 0.6), stage 2 right; row 3: stage 0 right (0.8)
    conf = torch.tensor([[0.9, 0.6, 0.7, 0.8], [0.95, 0.9, 0.6, 0.95], [1.0, 1.0, 1.0, 1.0]])
    preds = torch.tensor([[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    record = StageRecord(conf, preds, torch.zeros(4, dtype=torch.long), [1.0, 4.0, 16.0], 2)
    res = search_thresholds(record, target_accuracy=1.0)
    assert res.thresholds == pytest.approx([0.8, 0.9], abs=1e-6)
    assert res.reach == [1.0, 0.5, 0.25]
    assert res.macs_per_input == pytest.approx((4 * 1 + 2 * 4 + 1 * 16) / 4)
    assert res.macs_ratio == pytest.approx(7 / 16)
    assert res.front[0]["macs_ratio"] == pytest.approx(1 / 16)  # all at stage 0
    assert res.front[-1]["accuracy"] == 1.0


def test_regression_float32_goal_is_met_within_rounding() -> None:
    # the best recall is exactly 2/3; a goal computed in float32 rounds it up by 2e-8
    conf = torch.tensor([[0.9, 0.8, 0.7], [1.0, 1.0, 1.0]])
    preds = torch.tensor([[1, 1, 0], [1, 1, 0]])
    record = StageRecord(conf, preds, torch.tensor([1, 1, 1]), [1.0, 2.0], 2)
    goal = float(torch.tensor(2 / 3))
    assert goal > 2 / 3
    res = search_thresholds(record, target_recall={1: goal})
    assert res.recall[1] == pytest.approx(2 / 3) and res.fallback_rate == 0.0
