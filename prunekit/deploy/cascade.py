"""A confidence cascade: a small model first, a larger one only for the rows it is unsure of.

``Cascade([pruned, original], threshold=0.9)`` runs stage 0 on the whole batch; the rows whose
confidence (:mod:`.confidence`) is below stage 0's threshold — only those — go, as one smaller
batch, to stage 1, and so on; the last stage answers every row that reaches it. Each output
row is exactly the logits of the stage that handled it. ``K`` stages take ``K - 1``
thresholds (one number is used for every stage but the last).

:meth:`Cascade.calibrate` picks the thresholds on validation data
(:mod:`.thresholds`); :func:`~prunekit.deploy.report.evaluate_cascade` measures accuracy,
fallback and the MACs and latency actually spent; :func:`~prunekit.deploy.script.
export_cascade_torchscript` and :func:`~prunekit.deploy.storage.save_cascade` /
:func:`~prunekit.deploy.storage.load_cascade` ship it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunekit.errors import ConfigError, DataError

from ._rows import as_inputs, logits_of, rows_of, take_rows
from .confidence import class_logits, confidence_code, confidence_of
from .thresholds import CalibrationResult, record_stages, search_thresholds

__all__ = ["Cascade", "CascadeOutput", "check_thresholds"]


@dataclass
class CascadeOutput:
    """One routed batch.

    Attributes:
        outputs: ``(N, C)`` logits, row ``i`` from the stage that handled input ``i``.
        stage: ``(N,)`` int64, the stage that handled each row.
        confidence: ``(N,)`` the handling stage's confidence in its answer.
        rows: Rows each stage processed (``rows[0] == N``).
    """

    outputs: torch.Tensor
    stage: torch.Tensor
    confidence: torch.Tensor
    rows: list[int]


def check_thresholds(threshold: float | Sequence[float], stages: int) -> list[float]:
    """``stages - 1`` thresholds from one number or a sequence, each a number >= 0.

    Raises:
        ConfigError: the count or a value is wrong (named, with the fix).

    Example:
        >>> check_thresholds(0.8, 3), check_thresholds([0.9, 0.7], 3)
        ([0.8, 0.8], [0.9, 0.7])
    """
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
        values = [float(threshold)] * (stages - 1)
    elif isinstance(threshold, Sequence) and not isinstance(threshold, str):
        values = list(threshold)
        if len(values) != stages - 1:
            raise ConfigError(
                f"threshold={list(threshold)!r} has {len(values)} values for {stages} stages; "
                f"pass {stages - 1} (one per stage but the last) or one number for all"
            )
    else:
        raise ConfigError(
            f"threshold={threshold!r} must be a number or a list of {stages - 1} numbers in "
            "[0, 1] (a row stays at a stage when its confidence is >= the threshold)"
        )
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v < 0:
            raise ConfigError(
                f"threshold {i} is {v!r}; each threshold must be a number >= 0 (confidences "
                "lie in [0, 1]; 0 keeps every row at the stage, inf passes every row on)"
            )
    return [float(v) for v in values]


class Cascade(nn.Module):
    """Stages tried in order; a row leaves a stage only when the stage is unsure of it.

    Args:
        stages: Two or more models returning class logits for the same classes, cheapest
            first (e.g. ``[pruned_4x, pruned_2x, original]``).
        threshold: One number for every stage but the last, or one per stage but the last;
            a row stays at stage ``k`` when its confidence is ``>= threshold[k]``.
        confidence: ``"max_prob"``, ``"margin"`` or ``"entropy"`` (:mod:`.confidence`).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> small, big = nn.Linear(4, 3), nn.Linear(4, 3)
        >>> cascade = Cascade([small, big], threshold=0.5)
        >>> routed = cascade.route(torch.randn(8, 4))
        >>> routed.outputs.shape, routed.rows[0]
        (torch.Size([8, 3]), 8)
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        *,
        threshold: float | Sequence[float] = 0.9,
        confidence: str = "max_prob",
    ) -> None:
        super().__init__()
        if isinstance(stages, nn.Module) or not isinstance(stages, Sequence):
            raise ConfigError(
                f"stages is a {type(stages).__name__}; pass a list of models, cheapest first"
            )
        bad = [i for i, s in enumerate(stages) if not isinstance(s, nn.Module)]
        if len(stages) < 2 or bad:
            where = f"stage {bad[0]} is a {type(stages[bad[0]]).__name__}" if bad else ""
            raise ConfigError(
                f"Cascade needs two or more nn.Module stages, got {len(stages)} {where}; pass "
                "e.g. [pruned, original]"
            )
        self.stages = nn.ModuleList(stages)
        self.thresholds = check_thresholds(threshold, len(stages))
        confidence_code(confidence)
        self.confidence = confidence
        self.rows_processed = [0] * len(stages)
        self.calibration: CalibrationResult | None = None

    def set_thresholds(self, threshold: float | Sequence[float]) -> None:
        """Replace the thresholds (validated as in the constructor)."""
        self.thresholds = check_thresholds(threshold, len(self.stages))

    def reset_counts(self) -> None:
        """Zero :attr:`rows_processed`, the rows each stage has run on since the last reset."""
        self.rows_processed = [0] * len(self.stages)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The routed logits (see :meth:`route`)."""
        return self.route(as_inputs(args, kwargs)).outputs

    def route(self, inputs: Any) -> CascadeOutput:
        """Run the cascade on one batch (a tensor, tuple or dict of tensors with dim 0 = N)."""
        n = rows_of(inputs, "Cascade")
        kind = confidence_code(self.confidence)
        active = torch.arange(n)
        sub = inputs
        rows: list[int] = []
        parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for k, stage in enumerate(self.stages):
            logits = class_logits(logits_of(stage, sub, f"stage {k}'s output"))
            if parts and logits.shape[1:] != parts[0][1].shape[1:]:
                raise DataError(
                    f"stage {k} returns logits of shape {tuple(logits.shape[1:])} per row, "
                    f"stage 0 {tuple(parts[0][1].shape[1:])}; every stage must score the "
                    "same classes"
                )
            rows.append(len(active))
            score = confidence_of(logits, kind)
            if k == len(self.stages) - 1:
                keep = torch.ones_like(score, dtype=torch.bool)
            else:
                keep = score >= self.thresholds[k]
            keep_cpu = keep.cpu()
            if bool(keep_cpu.all()):
                parts.append((active, logits, score))
                break
            parts.append((active[keep_cpu], logits[keep], score[keep]))
            sub = take_rows(sub, ~keep_cpu, len(active))
            active = active[~keep_cpu]
        for k, count in enumerate(rows):
            self.rows_processed[k] += count
        rows += [0] * (len(self.stages) - len(rows))
        return _assemble(parts, n, rows)

    def calibrate(
        self,
        val_data: Iterable[Any],
        *,
        target_accuracy: float | None = None,
        max_fallback_rate: float | None = None,
        target_recall: Mapping[int, float] | None = None,
        max_candidates: int = 4096,
    ) -> CalibrationResult:
        """Pick the thresholds on validation data and set them (see :mod:`.thresholds`).

        With ``target_accuracy`` and/or ``target_recall`` (``{class: recall}``) the
        thresholds are the cheapest (fewest MACs spent per input) that meet every target;
        with ``max_fallback_rate`` alone, the most accurate whose share of rows leaving
        stage 0 stays within the rate.

        Returns:
            The :class:`~prunekit.deploy.thresholds.CalibrationResult` (also kept in
            :attr:`calibration`).
        """
        record = record_stages(list(self.stages), val_data, confidence=self.confidence)
        result = search_thresholds(
            record,
            target_accuracy=target_accuracy,
            max_fallback_rate=max_fallback_rate,
            target_recall=target_recall,
            max_candidates=max_candidates,
        )
        self.set_thresholds(result.thresholds)
        self.calibration = result
        return result

    def extra_repr(self) -> str:
        return f"confidence={self.confidence!r}, thresholds={self.thresholds}"


def _assemble(
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], n: int, rows: list[int]
) -> CascadeOutput:
    """One output from each stage's (row positions, logits, confidence) of the rows it kept."""
    first = parts[0][1]
    if len(parts) == 1:  # stage 0 kept every row: its output as it is
        return CascadeOutput(first, torch.zeros(n, dtype=torch.long), parts[0][2], rows)
    out = first.new_empty((n, *first.shape[1:]))
    stage = torch.empty(n, dtype=torch.long)
    conf = torch.empty(n, device=first.device)
    for k, (where, logits, score) in enumerate(parts):
        out[where.to(out.device)] = logits.to(device=out.device, dtype=out.dtype)
        stage[where] = k
        conf[where.to(conf.device)] = score.to(conf.device)
    return CascadeOutput(out, stage, conf, rows)
