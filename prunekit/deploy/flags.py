"""Flag the inputs a pruned model may get wrong, without labels (Hooker et al., 2019).

Pruning changes a few answers. Those inputs ("pruning identified exemplars") are found by
comparing the pruned model with the original on the same input, no label needed:

- it *disagrees* when the top-1 classes differ (always flagged);
- its *drop* is how much less sure the pruned model is than the original: by default
  (``score="prob_drop"``) ``p_orig[c] - p_pruned[c]`` for the original's class ``c``, or
  ``conf(orig) - conf(pruned)`` for a :mod:`.confidence` score (``"max_prob"``,
  ``"margin"``, ``"entropy"``). A row is flagged when it disagrees or ``drop > margin``.

:meth:`DisagreementDetector.calibrate` sets ``margin`` on unlabeled validation data so that
a chosen share of rows is flagged. Online, :meth:`~DisagreementDetector.flag` returns a
bool per row and calls ``on_flag`` with the flagged rows (to log or route them); offline,
:meth:`~DisagreementDetector.analyze` (:mod:`.flag_report`) reports the flag rate, the
per-class disagreement, the flagged indices, and, given labels, the precision and recall of
the flag against the pruned model's *new* errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunekit.errors import ConfigError, DataError

from ._rows import data_batches, logits_of
from .confidence import CONFIDENCES, class_logits, confidence_code, confidence_of
from .flag_report import FlagReport, FlagScores, flag_report

__all__ = [
    "SCORES",
    "DisagreementDetector",
    "FlagEvent",
    "FlagOutput",
    "disagreement_scores",
    "margin_for_rate",
]

SCORES: tuple[str, ...] = ("prob_drop", *CONFIDENCES)
"""How the confidence drop is measured (see the module doc)."""


@dataclass
class FlagOutput:
    """One batch through the detector.

    Attributes:
        outputs, reference: The pruned and original logits. flags: ``(N,)`` bool.
        disagree: ``(N,)`` bool, top-1 differs. drop: ``(N,)`` the confidence drop.
    """

    outputs: torch.Tensor
    reference: torch.Tensor
    flags: torch.Tensor
    disagree: torch.Tensor
    drop: torch.Tensor


@dataclass
class FlagEvent:
    """What ``on_flag`` receives for a batch with flagged rows.

    Attributes:
        rows: Positions of the flagged rows in the batch. positions: Their positions in
            the stream since the detector was made (rows seen before this batch added).
        pred, reference_pred: The two models' classes. drop: Their confidence drops.
    """

    rows: list[int]
    positions: list[int]
    pred: list[int]
    reference_pred: list[int]
    drop: list[float]


def disagreement_scores(
    outputs: torch.Tensor, reference: torch.Tensor, score: str = "prob_drop"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(disagree, drop)`` per row of two logit tensors of the same shape.

    Example:
        >>> pruned = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
        >>> original = torch.tensor([[0.0, 2.0], [2.0, 0.0]])
        >>> disagree, drop = disagreement_scores(pruned, original)
        >>> disagree.tolist(), [round(d, 3) for d in drop.tolist()]
        ([True, False], [0.381, 0.0])
    """
    if score not in SCORES:
        raise ConfigError(f"score={score!r} is not a drop score; use one of {list(SCORES)}")
    out, ref = class_logits(outputs).float(), class_logits(reference).float()
    if out.shape != ref.shape:
        raise DataError(
            f"the pruned model returns logits {tuple(out.shape)}, the original "
            f"{tuple(ref.shape)}; both must score the same classes for the same rows"
        )
    ref_class = ref.argmax(dim=1)
    disagree = out.argmax(dim=1) != ref_class
    if score == "prob_drop":
        pick = ref_class.unsqueeze(1)
        drop = ref.softmax(1).gather(1, pick)[:, 0] - out.softmax(1).gather(1, pick)[:, 0]
    else:
        kind = confidence_code(score)
        drop = confidence_of(ref, kind) - confidence_of(out, kind)
    return disagree, drop


def margin_for_rate(disagree: torch.Tensor, drop: torch.Tensor, rate: float) -> float:
    """The margin that flags ``round(rate * N)`` rows: every disagreement, then the largest
    drops (``inf`` when the disagreements alone reach the rate).

    Example:
        >>> margin_for_rate(torch.tensor([True, False, False, False]),
        ...                 torch.tensor([0.9, 0.5, 0.25, 0.0]), 0.5)
        0.25
    """
    want = int(math.floor(rate * disagree.numel() + 0.5))
    extra = want - int(disagree.sum())
    rest = torch.sort(drop[~disagree].double(), descending=True).values
    if extra <= 0 or rest.numel() == 0:
        return math.inf
    if extra >= rest.numel():
        return -math.inf
    return float(rest[extra])


class DisagreementDetector:
    """Compare a pruned model with its original, input by input (see the module doc).

    Args:
        pruned, original: The two models (same classes).
        margin: Flag rows whose drop exceeds it (``None``: disagreements only, until
            :meth:`calibrate` sets it).
        score: ``"prob_drop"`` or a confidence name (:data:`SCORES`).
        on_flag: Called with a :class:`FlagEvent` for each batch that has flagged rows.

    Example:
        >>> from torch import nn
        >>> det = DisagreementDetector(nn.Linear(4, 3), nn.Linear(4, 3))
        >>> flags = det.flag(torch.randn(5, 4))
        >>> flags.dtype, flags.shape
        (torch.bool, torch.Size([5]))
    """

    def __init__(
        self,
        pruned: nn.Module,
        original: nn.Module,
        *,
        margin: float | None = None,
        score: str = "prob_drop",
        on_flag: Callable[[FlagEvent], Any] | None = None,
    ) -> None:
        for name, model in (("pruned", pruned), ("original", original)):
            if not isinstance(model, nn.Module):
                raise ConfigError(f"{name} is a {type(model).__name__}; pass an nn.Module")
        if score not in SCORES:
            raise ConfigError(f"score={score!r} is not a drop score; use one of {list(SCORES)}")
        if on_flag is not None and not callable(on_flag):
            raise ConfigError(f"on_flag={on_flag!r} must be callable (event) -> None, or None")
        self.pruned, self.original, self.score, self.on_flag = pruned, original, score, on_flag
        self.margin = math.inf if margin is None else _check_margin(margin)
        self.calibrated_rate: float | None = None
        self.seen = 0

    def run(self, inputs: Any) -> FlagOutput:
        """Both models on one batch, the flags, and ``on_flag`` for the flagged rows."""
        with torch.inference_mode():
            out = logits_of(self.pruned, inputs, "the pruned model's output")
            ref = logits_of(self.original, inputs, "the original model's output")
        disagree, drop = disagreement_scores(out, ref, self.score)
        flags = disagree | (drop > self.margin)
        result = FlagOutput(out, ref, flags.cpu(), disagree.cpu(), drop.cpu())
        if self.on_flag is not None and bool(flags.any()):
            rows = torch.nonzero(result.flags).flatten().tolist()
            self.on_flag(
                FlagEvent(
                    rows=rows,
                    positions=[self.seen + r for r in rows],
                    pred=class_logits(out).argmax(1)[rows].tolist(),
                    reference_pred=class_logits(ref).argmax(1)[rows].tolist(),
                    drop=result.drop[rows].tolist(),
                )
            )
        self.seen += int(flags.numel())
        return result

    def flag(self, inputs: Any) -> torch.Tensor:
        """``(N,)`` bool: which rows of one batch are flagged (``on_flag`` is called)."""
        return self.run(inputs).flags

    def scores(self, data: Iterable[Any]) -> FlagScores:
        """Both models over every row of ``data`` (no callbacks): :class:`FlagScores`."""
        parts: list[list[torch.Tensor]] = [[] for _ in range(4)]
        targets: list[torch.Tensor | None] = []
        with torch.inference_mode():
            for inputs, target in data_batches(data, "DisagreementDetector"):
                out = logits_of(self.pruned, inputs, "the pruned model's output")
                ref = logits_of(self.original, inputs, "the original model's output")
                disagree, drop = disagreement_scores(out, ref, self.score)
                got = (disagree, drop, class_logits(out).argmax(1), class_logits(ref).argmax(1))
                for part, t in zip(parts, got):
                    part.append(t.cpu())
                targets.append(target)
        labelled = [t for t in targets if t is not None]
        if labelled and len(labelled) != len(targets):
            raise DataError(
                "only some batches carry labels; yield (inputs, labels) in every batch or "
                "inputs alone in every batch"
            )
        d, dr, p, r = (torch.cat(part) for part in parts)
        return FlagScores(d, dr, p, r, torch.cat(labelled) if labelled else None)

    def calibrate(self, data: Iterable[Any], *, flag_rate: float) -> float:
        """Set :attr:`margin` so that ``flag_rate`` of the rows of ``data`` are flagged
        (labels, if any, are ignored). Returns the margin; :attr:`calibrated_rate` is the
        share actually flagged (more than asked when disagreements alone exceed it)."""
        if isinstance(flag_rate, bool) or not isinstance(flag_rate, (int, float)):
            raise ConfigError(f"flag_rate={flag_rate!r} must be a number in (0, 1), e.g. 0.1")
        if not 0 < flag_rate < 1:
            raise ConfigError(f"flag_rate={flag_rate!r} must be in (0, 1), e.g. 0.1")
        got = self.scores(data)
        self.margin = margin_for_rate(got.disagree, got.drop, float(flag_rate))
        self.calibrated_rate = float(got.flags(self.margin).double().mean())
        return self.margin

    def analyze(self, data: Iterable[Any], *, rates: Sequence[float] | None = None) -> FlagReport:
        """The offline report over ``data`` at the current margin (:mod:`.flag_report`)."""
        return flag_report(self.scores(data), margin=self.margin, score=self.score, rates=rates)


def _check_margin(margin: float) -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or math.isnan(margin):
        raise ConfigError(
            f"margin={margin!r} must be a number (a drop in confidence, e.g. 0.2) or None"
        )
    return float(margin)
