"""Classification quality: accuracy, top-k, confusion matrix, precision/recall/F1.

Conventions (the same as ``sklearn.metrics``):

- functions take ``(preds, targets)``; ``preds`` are class indices ``(N,)``, scores or logits
  ``(N, C)`` (the argmax is the prediction) or one binary logit per row ``(N, 1)``;
- the confusion matrix has true classes in rows and predicted classes in columns;
- a ratio with a zero denominator (precision of a class never predicted, recall of a class
  never seen) counts as 0 in the averages, as sklearn's default does; per-class lists report
  it as ``None`` (undefined) instead;
- ``"macro"`` averages over the classes that occur in ``targets`` or ``preds``;
  ``"weighted"`` weights each class by its support (true count); ``"micro"`` pools every
  decision, which for single-label data equals accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from prunekit.errors import ConfigError
from prunekit.evaluation._arrays import ArrayLike, as_labels, as_tensor, check_rows
from prunekit.evaluation.confidence import (
    DEFAULT_BINS,
    expected_calibration_error,
    mean_confidence,
    probabilities,
)

__all__ = [
    "AVERAGES",
    "ClassificationQuality",
    "PerClass",
    "accuracy",
    "classification_quality",
    "confusion_matrix",
    "per_class_recall",
    "per_class_scores",
    "precision_recall_f1",
    "top_k_accuracy",
]

AVERAGES = ("macro", "micro", "weighted")
"""The averaging modes of :func:`precision_recall_f1`."""


def accuracy(preds: ArrayLike, targets: ArrayLike) -> float:
    """Fraction of samples whose predicted class equals the target.

    Example:
        >>> accuracy([0, 1, 2, 2], [0, 1, 1, 2])
        0.75
        >>> accuracy([[0.9, 0.1], [0.3, 0.7]], [0, 0])  # scores: argmax is the prediction
        0.5
    """
    pred, true = _pair(preds, targets)
    return float((pred == true).double().mean())


def top_k_accuracy(scores: ArrayLike, targets: ArrayLike, *, k: int = 5) -> float:
    """Fraction of samples whose target is among the ``k`` highest scores.

    Ties are broken by ``torch.topk`` (lower class index first on CPU).

    Raises:
        ConfigError: If ``scores`` is not ``(N, C)`` or ``k`` is not in ``[1, C]``.

    Example:
        >>> scores = [[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.4, 0.35, 0.25]]
        >>> top_k_accuracy(scores, [1, 0, 2], k=2)  # 1 is 2nd; 0 is 3rd; 2 is 3rd
        0.3333333333333333
    """
    score = as_tensor(scores, "scores")
    true = as_labels(targets, "targets")
    if score.dim() != 2:
        raise ConfigError(f"scores has shape {tuple(score.shape)}; top-k needs scores (N, C)")
    check_rows(score, true, "scores and targets")
    num_classes = int(score.shape[1])
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= num_classes:
        raise ConfigError(f"k={k!r} must be an int in [1, {num_classes}] (the number of classes)")
    top = score.topk(k, dim=1).indices
    return float((top == true[:, None]).any(dim=1).double().mean())


def confusion_matrix(
    preds: ArrayLike, targets: ArrayLike, *, num_classes: int | None = None
) -> torch.Tensor:
    """Counts ``cm[t, p]`` of samples of true class ``t`` predicted as ``p`` (int64, ``(C, C)``).

    Args:
        preds: Predicted classes or scores.
        targets: True classes.
        num_classes: ``C``; default: the largest class index seen plus one (or the number of
            score columns).

    Example:
        >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2]).tolist()
        [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    """
    pred, true = _pair(preds, targets)
    size = _num_classes(preds, pred, true, num_classes)
    flat = torch.bincount(true * size + pred, minlength=size * size)
    return flat.reshape(size, size)


@dataclass(frozen=True)
class PerClass:
    """Per-class precision, recall, F1 and support (``None``: undefined, zero denominator).

    Example:
        >>> per_class_scores([0, 0, 1], [0, 1, 1]).recall
        [1.0, 0.5]
    """

    precision: list[float | None]
    recall: list[float | None]
    f1: list[float | None]
    support: list[int]


def per_class_scores(
    preds: ArrayLike, targets: ArrayLike, *, num_classes: int | None = None
) -> PerClass:
    """Precision, recall and F1 of every class, from the confusion matrix.

    F1 is ``2 TP / (2 TP + FP + FN)`` (the harmonic mean of precision and recall where both are
    defined); it is ``None`` only for a class that is neither present nor predicted.

    Example:
        >>> s = per_class_scores([0, 1, 1, 2], [0, 1, 2, 2], num_classes=4)
        >>> s.precision, s.recall, s.support
        ([1.0, 0.5, 1.0, None], [1.0, 1.0, 0.5, None], [1, 1, 2, 0])
    """
    cm = confusion_matrix(preds, targets, num_classes=num_classes).double()
    tp, predicted, support = cm.diagonal(), cm.sum(dim=0), cm.sum(dim=1)
    return PerClass(
        precision=_ratio_list(tp, predicted),
        recall=_ratio_list(tp, support),
        f1=_ratio_list(2 * tp, predicted + support),
        support=[int(s) for s in support.tolist()],
    )


def per_class_recall(
    preds: ArrayLike, targets: ArrayLike, *, num_classes: int | None = None
) -> list[float | None]:
    """Recall of every class (``None`` for a class absent from ``targets``).

    Example:
        >>> per_class_recall([0, 0, 1, 1], [0, 1, 1, 1])
        [1.0, 0.6666666666666666]
    """
    return per_class_scores(preds, targets, num_classes=num_classes).recall


def precision_recall_f1(
    preds: ArrayLike,
    targets: ArrayLike,
    *,
    average: str = "macro",
    num_classes: int | None = None,
) -> tuple[float, float, float]:
    """Averaged precision, recall and F1 (see the module doc for the averaging rules).

    Args:
        preds: Predicted classes or scores.
        targets: True classes.
        average: ``"macro"``, ``"micro"`` or ``"weighted"``.
        num_classes: Size of the label space (default: inferred).

    Returns:
        ``(precision, recall, f1)``.

    Example:
        >>> p, r, f = precision_recall_f1([0, 1, 1, 2], [0, 1, 2, 2], average="macro")
        >>> round(p, 4), round(r, 4), round(f, 4)  # per class p=(1, .5, 1), r=(1, 1, .5)
        (0.8333, 0.8333, 0.7778)
    """
    if average not in AVERAGES:
        raise ConfigError(f"average={average!r} is not one of {list(AVERAGES)}")
    cm = confusion_matrix(preds, targets, num_classes=num_classes).double()
    tp, predicted, support = cm.diagonal(), cm.sum(dim=0), cm.sum(dim=1)
    if average == "micro":
        total = float(cm.sum())
        value = float(tp.sum()) / total
        return value, value, value
    scores = [_ratio(tp, predicted), _ratio(tp, support), _ratio(2 * tp, predicted + support)]
    if average == "macro":
        present = (support + predicted) > 0
        p, r, f = (float(s[present].mean()) for s in scores)
    else:
        weights = support / support.sum()
        p, r, f = (float((s * weights).sum()) for s in scores)
    return p, r, f


def _pair(preds: ArrayLike, targets: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    pred = as_labels(preds, "preds")
    true = as_labels(targets, "targets")
    check_rows(pred, true, "preds and targets")
    return pred, true


def _num_classes(
    preds: ArrayLike, pred: torch.Tensor, true: torch.Tensor, num_classes: int | None
) -> int:
    seen = int(max(int(pred.max()), int(true.max()))) + 1
    raw = as_tensor(preds, "preds")
    if raw.dim() == 2:
        seen = max(seen, 2 if raw.shape[1] == 1 else int(raw.shape[1]))
    if num_classes is None:
        return seen
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < seen:
        raise ConfigError(
            f"num_classes={num_classes!r} is smaller than the label space seen ({seen} classes: "
            f"indices up to {seen - 1}); pass num_classes >= {seen} or None to infer it"
        )
    return num_classes


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.zeros_like(num))


def _ratio_list(num: torch.Tensor, den: torch.Tensor) -> list[float | None]:
    return [float(n / d) if d > 0 else None for n, d in zip(num.tolist(), den.tolist())]


@dataclass
class ClassificationQuality:
    """Every classification metric of one model on one dataset (plain, JSON-ready data).

    Attributes:
        num_samples: Samples evaluated.
        num_classes: Size of the label space.
        accuracy: Top-1 accuracy.
        top_k: ``{k: top-k accuracy}`` (empty when only labels were given).
        loss: Mean cross-entropy of the logits (``None`` when only labels were given).
        precision_macro, recall_macro, f1_macro: Macro averages.
        precision_micro, recall_micro, f1_micro: Micro averages (equal to accuracy).
        precision_weighted, recall_weighted, f1_weighted: Support-weighted averages.
        per_class: Per-class precision, recall, F1 and support.
        confusion_matrix: ``cm[true][pred]`` counts.
        mean_confidence: Mean largest class probability (``None`` without logits).
        ece: Expected calibration error (15 bins by default; ``None`` without logits).

    Example:
        >>> q = classification_quality([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 1])
        >>> round(q.accuracy, 4), q.confusion_matrix, q.top_k
        (0.6667, [[1, 0], [1, 1]], {1: 0.6666666666666666})
    """

    num_samples: int
    num_classes: int
    accuracy: float
    top_k: dict[int, float]
    loss: float | None
    precision_macro: float
    recall_macro: float
    f1_macro: float
    precision_micro: float
    recall_micro: float
    f1_micro: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    per_class: PerClass
    confusion_matrix: list[list[int]]
    mean_confidence: float | None = None
    ece: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict`` (``top_k`` keys become strings)."""
        out = asdict(self)
        out["top_k"] = {str(k): v for k, v in self.top_k.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassificationQuality:
        """Rebuild from :meth:`to_dict` output."""
        fields = dict(data)
        fields["top_k"] = {int(k): float(v) for k, v in data["top_k"].items()}
        fields["per_class"] = PerClass(**data["per_class"])
        return cls(**fields)


def classification_quality(
    outputs: ArrayLike,
    targets: ArrayLike,
    *,
    num_classes: int | None = None,
    top_k: Sequence[int] = (1, 5),
    n_bins: int = DEFAULT_BINS,
) -> ClassificationQuality:
    """Compute every classification metric from logits (or labels) and targets.

    Args:
        outputs: Logits ``(N, C)`` (or log-probabilities), binary logits ``(N, 1)``, or
            predicted labels ``(N,)`` (then loss, top-k and calibration are left out).
        targets: True classes ``(N,)``.
        num_classes: Size of the label space (default: inferred).
        top_k: The ``k`` of the top-k accuracies; a ``k`` above the number of classes is
            skipped.
        n_bins: Bins of the expected calibration error.

    Returns:
        A :class:`ClassificationQuality`.

    Example:
        >>> q = classification_quality([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]], [0, 2], top_k=(1, 2))
        >>> q.accuracy, q.top_k, q.per_class.recall
        (0.5, {1: 0.5, 2: 0.5}, [1.0, None, 0.0])
    """
    scores = as_tensor(outputs, "outputs")
    true = as_labels(targets, "targets")
    cm = confusion_matrix(scores, true, num_classes=num_classes)
    size = int(cm.shape[0])
    averages = {a: precision_recall_f1(scores, true, average=a, num_classes=size) for a in AVERAGES}
    has_scores = scores.dim() == 2
    logits = _two_class(scores) if has_scores else None
    if logits is not None and int(true.max()) >= logits.shape[1]:
        raise ConfigError(
            f"targets hold class {int(true.max())} but outputs have {logits.shape[1]} score "
            "columns; the model must output one logit per class (or one binary logit)"
        )
    probs = probabilities(scores) if has_scores else None
    return ClassificationQuality(
        num_samples=int(true.shape[0]),
        num_classes=size,
        accuracy=accuracy(scores, true),
        top_k=_top_k(logits, true, top_k),
        loss=None if logits is None else float(F.cross_entropy(logits.double(), true)),
        **{f"{m}_{a}": v for a, vals in averages.items() for m, v in zip(_PRF, vals)},
        per_class=per_class_scores(scores, true, num_classes=size),
        confusion_matrix=[[int(v) for v in row] for row in cm.tolist()],
        mean_confidence=None if probs is None else mean_confidence(probs),
        ece=None if probs is None else expected_calibration_error(probs, true, n_bins=n_bins),
    )


_PRF = ("precision", "recall", "f1")


def _two_class(scores: torch.Tensor) -> torch.Tensor:
    """Binary logits ``(N, 1)`` as two-class logits ``[0, x]`` (same softmax as the sigmoid)."""
    if scores.shape[1] == 1:
        return torch.cat([torch.zeros_like(scores), scores], dim=1)
    return scores


def _top_k(logits: torch.Tensor | None, true: torch.Tensor, ks: Sequence[int]) -> dict[int, float]:
    if logits is None:
        return {}
    return {k: top_k_accuracy(logits, true, k=k) for k in ks if k <= logits.shape[1]}
