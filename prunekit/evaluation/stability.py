"""Stability against the unpruned model: prediction agreement and error analysis.

Two models with equal accuracy can disagree on many inputs. Agreement is the fraction of
inputs on which the pruned model predicts the same class as the reference (top-1). The error
analysis lists the inputs the pruned model *newly gets wrong* (the reference was right) and
those it *newly gets right* (the reference was wrong), with their labels, so a user can look
at what pruning broke. ``accuracy - reference_accuracy = (newly right - newly wrong) / N``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from prunekit.evaluation._arrays import ArrayLike, as_labels, as_tensor, check_rows
from prunekit.evaluation.confidence import (
    DEFAULT_BINS,
    expected_calibration_error,
    mean_confidence,
    probabilities,
)

__all__ = ["Flip", "FlipAnalysis", "StabilityReport", "agreement", "error_flips", "stability"]


def agreement(preds: ArrayLike, reference_preds: ArrayLike) -> float:
    """Fraction of samples where both models predict the same class (top-1 agreement).

    Example:
        >>> agreement([0, 1, 2, 2], [0, 1, 1, 2])
        0.75
        >>> agreement([[0.2, 0.8], [0.6, 0.4]], [[0.1, 0.9], [0.3, 0.7]])  # argmax of scores
        0.5
    """
    pred = as_labels(preds, "preds")
    ref = as_labels(reference_preds, "reference_preds")
    check_rows(pred, ref, "preds and reference_preds")
    return float((pred == ref).double().mean())


@dataclass(frozen=True)
class Flip:
    """One input whose correctness changed: its index, true class and both predictions.

    Example:
        >>> Flip(index=3, target=1, pred=2, reference_pred=1).to_dict()
        {'index': 3, 'target': 1, 'pred': 2, 'reference_pred': 1}
    """

    index: int
    target: int
    pred: int
    reference_pred: int

    def to_dict(self) -> dict[str, int]:
        """Return a plain, JSON-serialisable ``dict``."""
        return asdict(self)


@dataclass
class FlipAnalysis:
    """Inputs the pruned model newly gets wrong and newly gets right (indices in data order).

    Example:
        >>> fa = error_flips([0, 2, 1], [0, 1, 0], [0, 1, 1])
        >>> fa.newly_wrong_indices, fa.newly_right_indices
        ([1], [2])
    """

    newly_wrong: list[Flip]
    newly_right: list[Flip]

    @property
    def newly_wrong_indices(self) -> list[int]:
        """Indices of the inputs the pruned model newly gets wrong."""
        return [f.index for f in self.newly_wrong]

    @property
    def newly_right_indices(self) -> list[int]:
        """Indices of the inputs the pruned model newly gets right."""
        return [f.index for f in self.newly_right]

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict``."""
        return asdict(self)


def error_flips(preds: ArrayLike, reference_preds: ArrayLike, targets: ArrayLike) -> FlipAnalysis:
    """Find the inputs whose correctness differs between the pruned and reference models.

    Args:
        preds: The pruned model's predictions (labels or scores).
        reference_preds: The reference model's predictions on the same inputs.
        targets: True classes.

    Returns:
        A :class:`FlipAnalysis`; each list is in increasing index order.

    Example:
        >>> fa = error_flips([1, 1, 0, 2], [1, 0, 1, 2], [1, 0, 0, 2])
        >>> [f.to_dict() for f in fa.newly_wrong]
        [{'index': 1, 'target': 0, 'pred': 1, 'reference_pred': 0}]
        >>> fa.newly_right_indices
        [2]
    """
    pred = as_labels(preds, "preds")
    ref = as_labels(reference_preds, "reference_preds")
    true = as_labels(targets, "targets")
    check_rows(pred, ref, "preds and reference_preds")
    check_rows(pred, true, "preds and targets")
    ok, ref_ok = pred == true, ref == true

    def flips(mask: torch.Tensor) -> list[Flip]:
        return [
            Flip(index=i, target=int(true[i]), pred=int(pred[i]), reference_pred=int(ref[i]))
            for i in torch.nonzero(mask).flatten().tolist()
        ]

    return FlipAnalysis(newly_wrong=flips(ref_ok & ~ok), newly_right=flips(ok & ~ref_ok))


@dataclass
class StabilityReport:
    """How a pruned classifier's behaviour moved relative to its reference.

    Attributes:
        num_samples: Samples compared.
        agreement: Top-1 agreement with the reference.
        accuracy, reference_accuracy: Top-1 accuracy of each model (``None`` without targets).
        flips: Newly wrong / newly right inputs (``None`` without targets).
        mean_confidence, reference_mean_confidence: Mean top class probability (``None``
            when the outputs are labels, not logits).
        ece, reference_ece: Expected calibration error of each model (``None`` without
            targets or logits).

    Example:
        >>> s = stability([[2.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [1.0, 0.0]], [0, 0])
        >>> s.agreement, s.accuracy, s.reference_accuracy, s.flips.newly_wrong_indices
        (0.5, 0.5, 1.0, [1])
    """

    num_samples: int
    agreement: float
    accuracy: float | None = None
    reference_accuracy: float | None = None
    flips: FlipAnalysis | None = None
    mean_confidence: float | None = None
    reference_mean_confidence: float | None = None
    ece: float | None = None
    reference_ece: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StabilityReport:
        """Rebuild from :meth:`to_dict` output."""
        fields = dict(data)
        if data.get("flips") is not None:
            fields["flips"] = FlipAnalysis(
                newly_wrong=[Flip(**f) for f in data["flips"]["newly_wrong"]],
                newly_right=[Flip(**f) for f in data["flips"]["newly_right"]],
            )
        return cls(**fields)


def stability(
    outputs: ArrayLike,
    reference_outputs: ArrayLike,
    targets: ArrayLike | None = None,
    *,
    n_bins: int = DEFAULT_BINS,
) -> StabilityReport:
    """Agreement, error flips and confidence/calibration of a model against its reference.

    Args:
        outputs: The pruned model's logits ``(N, C)`` (or labels ``(N,)``).
        reference_outputs: The reference model's logits (or labels) on the same inputs.
        targets: True classes; without them only agreement and confidence are reported.
        n_bins: Bins of the expected calibration error.

    Example:
        >>> s = stability([0, 1, 1], [0, 1, 0])
        >>> round(s.agreement, 4), s.flips is None, s.mean_confidence is None
        (0.6667, True, True)
    """
    out = as_tensor(outputs, "outputs")
    ref = as_tensor(reference_outputs, "reference_outputs")
    n = check_rows(out, ref, "outputs and reference_outputs")
    scores = out.dim() == 2 and ref.dim() == 2
    probs = (probabilities(out), probabilities(ref)) if scores else None
    report = StabilityReport(num_samples=n, agreement=agreement(out, ref))
    if probs is not None:
        report.mean_confidence = mean_confidence(probs[0])
        report.reference_mean_confidence = mean_confidence(probs[1])
    if targets is None:
        return report
    true = as_labels(targets, "targets")
    report.flips = error_flips(out, ref, true)  # checks that targets have N rows
    report.accuracy = float((as_labels(out, "outputs") == true).double().mean())
    report.reference_accuracy = float((as_labels(ref, "reference") == true).double().mean())
    if probs is not None:
        report.ece = expected_calibration_error(probs[0], true, n_bins=n_bins)
        report.reference_ece = expected_calibration_error(probs[1], true, n_bins=n_bins)
    return report
