"""Confidence and expected calibration error against hand computations."""

from __future__ import annotations

import pytest
import torch

from prunekit.errors import ConfigError
from prunekit.evaluation import (
    expected_calibration_error,
    mean_confidence,
    probabilities,
    reliability_bins,
)

# Five samples; with 15 bins of width 1/15 the confidences fall in:
#   0.50 -> bin 7 (7/15, 8/15], correct       0.55 -> bin 8 (8/15, 9/15], wrong
#   0.62 -> bin 9 (9/15, 10/15], wrong        0.90, 0.92 -> bin 13 (13/15, 14/15], both correct
PROBS = [
    [0.5, 0.3, 0.2],
    [0.1, 0.55, 0.35],
    [0.3, 0.62, 0.08],
    [0.9, 0.05, 0.05],
    [0.05, 0.92, 0.03],
]
TARGETS = [0, 2, 0, 0, 1]


def test_ece_15_bins_by_hand() -> None:
    # sum over bins of |B|/N * |acc - conf|
    by_hand = (1 / 5) * 0.5 + (1 / 5) * 0.55 + (1 / 5) * 0.62 + (2 / 5) * abs(1.0 - 0.91)
    assert by_hand == pytest.approx(0.37)
    assert expected_calibration_error(PROBS, TARGETS) == pytest.approx(by_hand)


def test_reliability_bins_by_hand() -> None:
    bins = reliability_bins(PROBS, TARGETS)
    assert len(bins.edges) == 16 and bins.edges[0] == 0.0 and bins.edges[-1] == 1.0
    expected_counts = [0] * 15
    for b, n in {7: 1, 8: 1, 9: 1, 13: 2}.items():
        expected_counts[b] = n
    assert bins.counts == expected_counts
    assert bins.accuracy[13] == 1.0 and bins.accuracy[8] == 0.0 and bins.accuracy[0] is None
    assert bins.confidence[13] == pytest.approx(0.91)
    assert bins.ece == pytest.approx(expected_calibration_error(PROBS, TARGETS))


def _naive_ece(probs: torch.Tensor, targets: torch.Tensor, n_bins: int) -> float:
    """Textbook loop: bins (lo, hi], weighted |accuracy - confidence|."""
    conf, pred = probs.max(dim=1)
    total = 0.0
    for m in range(n_bins):
        lo, hi = m / n_bins, (m + 1) / n_bins
        inside = [(c, p == t) for c, p, t in zip(conf.tolist(), pred, targets) if lo < c <= hi]
        if inside:
            acc = sum(1.0 for _, ok in inside if ok) / len(inside)
            avg = sum(c for c, _ in inside) / len(inside)
            total += len(inside) / len(conf) * abs(acc - avg)
    return total


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_matches_naive_loop(n_bins: int) -> None:
    gen = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(300, 6, generator=gen) * 2, dim=1).double()
    targets = torch.randint(0, 6, (300,), generator=gen)
    ece = expected_calibration_error(probs, targets, n_bins=n_bins)
    assert ece == pytest.approx(_naive_ece(probs, targets, n_bins))


def test_perfect_confidence_and_one_bin() -> None:
    assert expected_calibration_error([[1.0, 0.0], [0.0, 1.0]], [0, 1]) == 0.0
    # one bin: |accuracy - mean confidence| = |0.5 - 0.75|
    assert expected_calibration_error([[0.9, 0.1], [0.6, 0.4]], [0, 1], n_bins=1) == pytest.approx(
        0.25
    )


def test_mean_confidence_and_probabilities() -> None:
    assert mean_confidence(PROBS) == pytest.approx((0.5 + 0.55 + 0.62 + 0.9 + 0.92) / 5)
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    probs = probabilities(logits)
    assert probs.sum(dim=1).tolist() == pytest.approx([1.0, 1.0])
    assert probs[1, 0] == pytest.approx(1 / (1 + torch.exp(torch.tensor(-2.0)).item()))
    # a binary logit becomes two class probabilities
    assert probabilities([0.0]).tolist() == [[0.5, 0.5]]


def test_logits_are_rejected_where_probabilities_are_expected() -> None:
    with pytest.raises(ConfigError, match="probabilities"):
        expected_calibration_error([[2.0, -1.0]], [0])
    with pytest.raises(ConfigError, match="n_bins=0"):
        expected_calibration_error(PROBS, TARGETS, n_bins=0)
    with pytest.raises(ConfigError, match="rows"):
        expected_calibration_error(PROBS, TARGETS[:2])
