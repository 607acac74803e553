"""Cascade routing: only the unsure rows go on, each output row is its handler's, MACs spent."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from prunekit.cost import count_macs
from prunekit.deploy import Cascade, confidence, evaluate_cascade
from tests.deploy.nets import Lookup, first_three, ids, logits_with, mlp

# stage-0 confidence (max prob) of rows 0..5: 0.95, 0.6, 0.85, 0.55, 0.99, 0.7
PROBS = [0.95, 0.6, 0.85, 0.55, 0.99, 0.7]


def two_stages() -> tuple[Lookup, Lookup]:
    small = Lookup([logits_with(p, i % 2) for i, p in enumerate(PROBS)])
    big = Lookup([[10.0 * i, -1.0] for i in range(len(PROBS))])
    return small, big


def test_only_low_confidence_rows_reach_stage_two() -> None:
    small, big = two_stages()
    routed = Cascade([small, big], threshold=0.8).route(ids(6))
    assert small.seen == [[0, 1, 2, 3, 4, 5]]
    assert big.seen == [[1, 3, 5]]  # one batch, only the rows below 0.8, in order
    assert routed.stage.tolist() == [0, 1, 0, 1, 0, 1]
    assert routed.rows == [6, 3]


def test_outputs_row_by_row_equal_the_handling_stage() -> None:
    small, big = two_stages()
    x = ids(6)
    routed = Cascade([small, big], threshold=0.8).route(x)
    alone_small, alone_big = small(x), big(x)
    for i, k in enumerate(routed.stage.tolist()):
        expected = alone_small[i] if k == 0 else alone_big[i]
        assert torch.equal(routed.outputs[i], expected)
    assert torch.allclose(routed.confidence[[0, 2, 4]], torch.tensor([0.95, 0.85, 0.99]))


def test_three_stages_each_with_its_threshold() -> None:
    small, _ = two_stages()
    mid = Lookup([logits_with(0.9 if i in (1, 5) else 0.5, 0) for i in range(6)])
    big = Lookup([[0.0, float(i)] for i in range(6)])
    routed = Cascade([small, mid, big], threshold=[0.8, 0.75]).route(ids(6))
    assert mid.seen == [[1, 3, 5]]
    assert big.seen == [[3]]
    assert routed.stage.tolist() == [0, 1, 0, 2, 0, 1]
    assert routed.rows == [6, 3, 1]
    assert torch.equal(routed.outputs[3], big.table[3])


def test_threshold_extremes_keep_or_pass_everything() -> None:
    small, big = two_stages()
    assert Cascade([small, big], threshold=0.0).route(ids(6)).rows == [6, 0]
    assert big.seen == []  # stage 1 never called when stage 0 keeps every row
    assert Cascade([small, big], threshold=math.inf).route(ids(6)).stage.tolist() == [1] * 6


def test_confidence_scores_by_hand() -> None:
    probs = torch.tensor([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]])
    logits = probs.log()
    assert torch.allclose(confidence(logits, "max_prob"), torch.tensor([0.7, 1 / 3]))
    assert torch.allclose(confidence(logits, "margin"), torch.tensor([0.5, 0.0]), atol=1e-6)
    h = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    expected = torch.tensor([1 - h / math.log(3), 0.0])
    assert torch.allclose(confidence(logits, "entropy"), expected, atol=1e-6)
    # one binary logit z stands for p = [1 - sigmoid(z), sigmoid(z)]
    z = torch.tensor([2.0, -1.0])
    assert torch.allclose(confidence(z, "max_prob"), torch.sigmoid(z.abs()))


def test_margin_routes_on_the_runner_up() -> None:
    # same top probability, different runner-up: only margin tells them apart
    small = Lookup([[math.log(0.5), math.log(0.45), math.log(0.05)],
                    [math.log(0.5), math.log(0.25), math.log(0.25)]])  # fmt: skip
    big = Lookup([[0.0, 0.0, 9.0]] * 2)
    routed = Cascade([small, big], threshold=0.2, confidence="margin").route(ids(2))
    assert routed.stage.tolist() == [1, 0]


class KeywordNet(nn.Module):
    """Takes keyword inputs; its logits are the features of ``x`` plus ``shift``."""

    def forward(self, x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return x + shift


def test_keyword_inputs_are_routed_row_by_row() -> None:
    x = torch.tensor([[5.0, 0.0], [0.0, 0.0], [0.0, 6.0]])
    shift = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    cascade = Cascade([KeywordNet(), KeywordNet()], threshold=0.9)
    out = cascade(x=x, shift=shift)
    assert torch.equal(out, x + shift)  # row 1 (p=0.73) went to stage 1 with its own shift
    assert cascade.rows_processed == [3, 1]


def test_macs_spent_match_a_hand_count() -> None:
    # stage 0: logits = x[:, :3] (12 MACs/row); stage 1: 112 MACs/row
    x = torch.zeros(8, 4)
    x[[0, 1, 2, 4, 6], 0] = 10.0  # confident rows; rows 3, 5, 7 are uniform (p = 1/3)
    cascade = Cascade([first_three(), mlp()], threshold=0.5)
    report = evaluate_cascade(cascade, [(x, torch.zeros(8, dtype=torch.long))], latency=False)
    assert report.rows_processed == [8, 3]
    assert report.macs_spent_per_input == (12 * 8 + 112 * 3) / 8  # 54
    assert report.macs_ratio == pytest.approx(54 / 112)
    assert [s.macs_per_input for s in report.stages] == [12, 112]
    # the counter on the routed forward itself sees the same work
    assert count_macs(cascade, x) == 12 * 8 + 112 * 3
    assert report.fallback_rate == 3 / 8 and report.handled == [5 / 8, 3 / 8]


def test_report_quality_next_to_each_stage() -> None:
    small, big = two_stages()
    labels = torch.tensor([0, 0, 0, 0, 0, 1])
    report = evaluate_cascade(Cascade([small, big], threshold=0.8), [(ids(6), labels)],
                              latency=False)  # fmt: skip
    # small predicts i % 2 -> right on 0, 2, 4, 5; big predicts class 0 everywhere
    assert report.stages[0].accuracy == pytest.approx(4 / 6)
    assert report.stages[1].accuracy == pytest.approx(5 / 6)
    # cascade: rows 0, 2, 4 from small (right), rows 1, 3, 5 from big (right, right, wrong)
    assert report.accuracy == pytest.approx(5 / 6)
    assert report.recall == [1.0, 0.0]
    assert "cascade" in report.table()


def test_latency_is_measured_for_cascade_and_each_stage() -> None:
    x = torch.randn(32, 4)
    cascade = Cascade([first_three(), mlp()], threshold=0.6)
    report = evaluate_cascade(cascade, [(x, torch.zeros(32, dtype=torch.long))],
                              batch_size=16, single_rows=4, runs=4, warmup=1)  # fmt: skip
    assert report.batch is not None and report.batch.rows == 16
    assert report.single is not None and report.single.rows == 1
    assert all(s.batch is not None and s.batch.median_ms > 0 for s in report.stages)
    assert report.batch.q1_ms <= report.batch.median_ms <= report.batch.q3_ms
