"""Confidence calibration: mean confidence, reliability bins, expected calibration error (ECE).

In prunekit "calibration" alone means the criteria's calibration data and statistics
(:mod:`prunekit.importance.calibration`); re-estimating BatchNorm statistics is "BN
re-estimation" (:func:`prunekit.recovery.reestimate_bn`); this module is about whether a
classifier's confidence matches its accuracy. It was ``prunekit.evaluation.calibration``
(that name still imports, with a DeprecationWarning).

A classifier's *confidence* on a sample is its largest class probability. It is *calibrated*
when, among samples predicted with confidence about ``c``, a fraction about ``c`` is correct.
The expected calibration error (Naeini et al. 2015; Guo et al. 2017) measures the gap with
``M`` equal-width bins ``B_m = ((m-1)/M, m/M]`` over the confidence::

    ECE = sum_m |B_m| / N * | acc(B_m) - conf(B_m) |

where ``acc`` is the fraction correct and ``conf`` the mean confidence of the bin. The default
``M = 15`` follows Guo et al. Pruning often leaves accuracy nearly intact but shifts confidence,
which this exposes.

Functions take class probabilities ``(N, C)`` (rows summing to 1); use
``prunekit.evaluation.probabilities(logits)`` or ``logits.softmax(-1)`` for logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from prunekit.errors import ConfigError
from prunekit.evaluation._arrays import ArrayLike, as_labels, as_tensor, check_rows, class_probs

__all__ = [
    "DEFAULT_BINS",
    "ReliabilityBins",
    "expected_calibration_error",
    "mean_confidence",
    "probabilities",
    "reliability_bins",
]

DEFAULT_BINS = 15
"""Number of equal-width confidence bins of the ECE (Guo et al. 2017)."""

_SUM_TOLERANCE = 1e-3


def probabilities(logits: ArrayLike) -> torch.Tensor:
    """Class probabilities ``(N, C)`` from logits (softmax), or from binary logits ``(N,)``.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 2.0], [1.0, 3.0]]).log()  # softmax(log p) = p / sum(p)
        >>> probabilities(logits).round(decimals=4).tolist()
        [[0.5, 0.5], [0.25, 0.75]]
    """
    return class_probs(logits, "logits")


def mean_confidence(probs: ArrayLike) -> float:
    """The mean over samples of the largest class probability.

    Example:
        >>> mean_confidence([[0.9, 0.1], [0.6, 0.4]])
        0.75
    """
    return float(_check_probs(probs).max(dim=1).values.mean())


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics of a reliability diagram (``M`` equal-width bins on ``(0, 1]``).

    Attributes:
        edges: ``M + 1`` bin edges ``0, 1/M, ..., 1``.
        counts: Samples per bin.
        accuracy: Fraction correct per bin (``None`` for an empty bin).
        confidence: Mean confidence per bin (``None`` for an empty bin).

    Example:
        >>> bins = reliability_bins([[0.9, 0.1], [0.6, 0.4]], [0, 1], n_bins=2)
        >>> bins.counts, bins.accuracy
        ([0, 2], [None, 0.5])
    """

    edges: list[float]
    counts: list[int]
    accuracy: list[float | None]
    confidence: list[float | None]

    @property
    def ece(self) -> float:
        """The expected calibration error of these bins."""
        total = sum(self.counts)
        gaps = [
            n / total * abs(a - c)
            for n, a, c in zip(self.counts, self.accuracy, self.confidence)
            if n and a is not None and c is not None
        ]
        return float(sum(gaps))

    def to_dict(self) -> dict[str, Any]:
        """Return the bins as a plain, JSON-serialisable ``dict``."""
        return asdict(self)


def reliability_bins(
    probs: ArrayLike, targets: ArrayLike, *, n_bins: int = DEFAULT_BINS
) -> ReliabilityBins:
    """Bin samples by confidence into ``n_bins`` equal-width bins ``((m-1)/M, m/M]``.

    Example:
        >>> b = reliability_bins([[0.95, 0.05], [0.3, 0.7], [0.35, 0.65]], [0, 0, 1], n_bins=4)
        >>> b.counts, b.accuracy[2], round(b.confidence[2], 6)
        ([0, 0, 2, 1], 0.5, 0.675)
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ConfigError(f"n_bins={n_bins!r} must be a positive int (15 is the usual choice)")
    prob = _check_probs(probs)
    true = as_labels(targets, "targets")
    check_rows(prob, true, "probs and targets")
    conf, pred = prob.max(dim=1)
    correct = (pred == true).double()
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)
    # bin m holds confidences in (edges[m-1], edges[m]]; a confidence of 0 falls in the first
    index = torch.bucketize(conf, edges[1:-1], right=False)
    counts = torch.bincount(index, minlength=n_bins)
    hits = torch.bincount(index, weights=correct, minlength=n_bins)
    conf_sum = torch.bincount(index, weights=conf, minlength=n_bins)
    return ReliabilityBins(
        edges=edges.tolist(),
        counts=[int(c) for c in counts.tolist()],
        accuracy=_means(hits, counts),
        confidence=_means(conf_sum, counts),
    )


def expected_calibration_error(
    probs: ArrayLike, targets: ArrayLike, *, n_bins: int = DEFAULT_BINS
) -> float:
    """Expected calibration error with ``n_bins`` equal-width confidence bins (see module doc).

    Args:
        probs: Class probabilities ``(N, C)``.
        targets: True classes ``(N,)``.
        n_bins: Number of bins ``M``.

    Returns:
        The ECE, in ``[0, 1]``.

    Example:
        >>> # bin (0.5, 0.75]: confidences 0.6, 0.7, one correct -> |0.5 - 0.65| * 2/3
        >>> # bin (0.75, 1]: confidence 0.9, correct -> |1 - 0.9| * 1/3
        >>> probs = [[0.6, 0.4], [0.3, 0.7], [0.9, 0.1]]
        >>> round(expected_calibration_error(probs, [0, 0, 0], n_bins=4), 6)
        0.133333
    """
    return reliability_bins(probs, targets, n_bins=n_bins).ece


def _check_probs(probs: ArrayLike) -> torch.Tensor:
    prob = as_tensor(probs, "probs").double()
    if prob.dim() != 2 or prob.shape[1] < 2:
        raise ConfigError(
            f"probs has shape {tuple(prob.shape)}; pass class probabilities of shape (N, C) with "
            "C >= 2 (probabilities(logits) converts logits)"
        )
    sums = prob.sum(dim=1)
    if bool((prob < 0).any()) or bool(((sums - 1).abs() > _SUM_TOLERANCE).any()):
        raise ConfigError(
            "probs rows must be probabilities (non-negative, summing to 1; a row sums to "
            f"{float(sums[(sums - 1).abs().argmax()]):.4f}); pass probabilities(logits)"
        )
    return prob


def _means(sums: torch.Tensor, counts: torch.Tensor) -> list[float | None]:
    return [float(s / c) if c else None for s, c in zip(sums.tolist(), counts.tolist())]
