"""Disagreement flags on a constructed pair of models: online, calibrated, offline report."""

from __future__ import annotations

import math

import pytest
import torch

from prunekit.deploy import DisagreementDetector, FlagEvent
from prunekit.deploy.flag_report import pr_curve
from tests.deploy.nets import Lookup, ids, logits_with

# The original is sure of class 0 on every row (p = 0.9). The pruned model:
# rows 0, 1: class 1 (disagrees); rows 2..7: class 0 with p = .85 .5 .9 .6 .8 .7
PRUNED = [(0.6, 1), (0.7, 1), (0.85, 0), (0.5, 0), (0.9, 0), (0.6, 0), (0.8, 0), (0.7, 0)]
# Labels: the original is right except on row 7; the pruned model is newly wrong on 0, 1
LABELS = [0, 0, 0, 0, 0, 0, 0, 1]


def pair(**kwargs: object) -> DisagreementDetector:
    pruned = Lookup([logits_with(p, c) for p, c in PRUNED])
    original = Lookup([logits_with(0.9, 0)] * len(PRUNED))
    return DisagreementDetector(pruned, original, **kwargs)  # type: ignore[arg-type]


def test_disagreements_are_flagged_without_a_margin() -> None:
    assert pair().flag(ids(8)).tolist() == [True, True] + [False] * 6


def test_confidence_drop_beyond_the_margin_is_flagged() -> None:
    out = pair(margin=0.25).run(ids(8))
    # drop = 0.9 - p_pruned(class 0): rows 2..7 -> .05 .4 0 .3 .1 .2
    assert out.drop[2:].tolist() == pytest.approx([0.05, 0.4, 0.0, 0.3, 0.1, 0.2], abs=1e-6)
    assert out.flags.tolist() == [True, True, False, True, False, True, False, False]
    assert out.disagree.tolist() == [True, True] + [False] * 6


def test_callback_gets_the_flagged_rows_with_stream_positions() -> None:
    events: list[FlagEvent] = []
    det = pair(margin=0.25, on_flag=events.append)
    det.flag(ids(8)[:4])
    det.flag(ids(8)[4:])
    assert [e.rows for e in events] == [[0, 1, 3], [1]]
    assert [e.positions for e in events] == [[0, 1, 3], [5]]
    assert events[0].pred == [1, 1, 0] and events[0].reference_pred == [0, 0, 0]
    assert det.seen == 8


def test_calibrated_margin_hits_the_flag_rate_on_unlabelled_data() -> None:
    det = pair()
    margin = det.calibrate([ids(8)], flag_rate=0.5)  # 4 of 8: the 2 disagreements + 2 drops
    assert margin == pytest.approx(0.2, abs=1e-6)  # flags drops .4 and .3, not .2
    assert det.calibrated_rate == 0.5
    assert det.flag(ids(8)).sum() == 4
    # asking for fewer flags than there are disagreements: only the disagreements
    assert det.calibrate([ids(8)], flag_rate=0.1) == math.inf
    assert det.calibrated_rate == 0.25


def test_offline_report_without_and_with_labels() -> None:
    det = pair(margin=0.25)
    plain = det.analyze([ids(8)])
    assert plain.flagged_indices == [0, 1, 3, 5] and plain.flag_rate == 0.5
    assert plain.disagreement_rate == 0.25 and not plain.labelled and plain.precision is None
    assert [(c.cls, c.n, c.disagreement_rate) for c in plain.per_class] == [(0, 8, 0.25)]
    rep = det.analyze([(ids(8), torch.tensor(LABELS))], rates=[0.25, 0.5])
    assert rep.newly_wrong == 2 and rep.newly_wrong_indices == [0, 1]
    assert rep.precision == 0.5 and rep.recall == 1.0  # 2 of the 4 flags are new errors
    by_true = {c.cls: c for c in rep.per_true_class}
    assert by_true[1].n == 1 and by_true[1].flag_rate == 0.0
    assert [(p.flagged, p.precision, p.recall) for p in rep.pr_curve] == [
        (2, 1.0, 1.0),
        (4, 0.5, 1.0),
    ]
    assert [p.ceiling for p in rep.pr_curve] == [1.0, 1.0]
    assert "| 0.25 | 2 | 1.000 | 1.000 | 1.000 |" in rep.curve_table()


def test_pr_curve_ranks_disagreements_first_then_drops() -> None:
    disagree = torch.tensor([False, True, False, False])
    drop = torch.tensor([0.9, 0.0, 0.5, 0.1])
    wrong = torch.tensor([False, False, True, True])
    points = pr_curve(disagree, drop, wrong, [0.25, 0.75, 1.0])
    # order: row 1 (disagrees), row 0 (.9), row 2 (.5), row 3 (.1)
    assert [(p.flagged, p.precision, p.recall, p.ceiling) for p in points] == [
        (1, 0.0, 0.0, 0.5),  # one flag can catch at most one of the two new errors
        (3, 1 / 3, 0.5, 1.0),
        (4, 0.5, 1.0, 1.0),
    ]


def test_other_drop_scores() -> None:
    out = pair(score="max_prob", margin=10.0).run(ids(8))
    # max-prob drop: 0.9 - max(p): row 0 (p=.6 for class 1) -> .3, row 3 -> .4
    assert out.drop[0].item() == pytest.approx(0.3, abs=1e-6)
    assert out.drop[3].item() == pytest.approx(0.4, abs=1e-6)
    assert out.flags.tolist() == [True, True] + [False] * 6
