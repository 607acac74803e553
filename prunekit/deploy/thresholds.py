"""Choosing a cascade's thresholds on validation data.

Every stage runs once on all the validation rows; the cascade is then simulated for each
candidate threshold vector (a row stays at the first stage whose confidence reaches that
stage's threshold), without running the models again. Candidates per stage are the distinct
confidences seen on the validation rows (exact for two stages up to ``max_candidates``
values) or their quantiles, plus ``0`` (keep every row) and ``inf`` (pass every row on);
``K`` stages search the product grid, at most ``max_candidates`` combinations.

The choice:

- with ``target_accuracy`` and/or ``target_recall={class: value}``: among the thresholds that
  meet every target (and ``max_fallback_rate`` when given too), the one that spends the
  fewest MACs per input (``sum_k macs_k * share of rows reaching stage k``), ties to the
  higher accuracy;
- with ``max_fallback_rate`` alone: the most accurate thresholds whose share of rows leaving
  stage 0 is within the rate (without labels: the thresholds that use the most of it).

No thresholds meet the targets: :class:`~prunekit.errors.SearchError` with the best that
was reached.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.errors import ConfigError, DataError, SearchError

from ._rows import data_batches, logits_of, macs_per_row
from .confidence import class_logits, confidence_code, confidence_of

__all__ = [
    "CalibrationResult",
    "StageRecord",
    "record_stages",
    "search_thresholds",
    "simulate",
]


@dataclass
class StageRecord:
    """Every stage's confidence and prediction on every validation row.

    Attributes:
        confidence: ``(K, N)`` float. preds: ``(K, N)`` int64.
        targets: ``(N,)`` labels or ``None``. macs: MACs per input of each stage alone.
        num_classes: Width of the logits.
    """

    confidence: torch.Tensor
    preds: torch.Tensor
    targets: torch.Tensor | None
    macs: list[float]
    num_classes: int


@dataclass
class CalibrationResult:
    """The chosen thresholds and what they give on the validation data.

    Attributes:
        thresholds: One per stage but the last.
        objective: ``"min_macs"``, ``"max_accuracy"`` or ``"max_fallback"`` (no labels).
        accuracy: Validation accuracy of the cascade (``None`` without labels).
        recall: Validation recall of each class named in ``target_recall``.
        reach: Share of rows that reach each stage (``reach[0] == 1``).
        fallback_rate: ``reach[1]``, the share that leaves stage 0.
        macs_per_input: MACs spent per input on the validation rows.
        macs_ratio: ``macs_per_input`` over the last stage's MACs alone.
        n: Validation rows. combinations: Threshold vectors tried.
        front: Pareto front of (MACs ratio, accuracy) over the candidates (labels only),
            at most 40 points, cheapest first.
    """

    thresholds: list[float]
    objective: str
    accuracy: float | None
    recall: dict[int, float | None]
    reach: list[float]
    fallback_rate: float
    macs_per_input: float
    macs_ratio: float
    n: int
    combinations: int
    front: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (an infinite threshold is written as ``"inf"``)."""
        out = asdict(self)
        out["thresholds"] = [t if math.isfinite(t) else "inf" for t in self.thresholds]
        for point in out["front"]:
            point["thresholds"] = [t if math.isfinite(t) else "inf" for t in point["thresholds"]]
        return out


def record_stages(
    stages: Sequence[nn.Module], data: Iterable[Any], *, confidence: str = "max_prob"
) -> StageRecord:
    """Run every stage on every row of ``data`` (no routing): what calibration searches on."""
    kind = confidence_code(confidence)
    conf: list[list[torch.Tensor]] = [[] for _ in stages]
    preds: list[list[torch.Tensor]] = [[] for _ in stages]
    targets: list[torch.Tensor | None] = []
    macs: list[float] = []
    width = 0
    with torch.inference_mode():
        for inputs, target in data_batches(data, "Cascade.calibrate"):
            if not macs:
                macs = [macs_per_row(stage, inputs) for stage in stages]
            for k, stage in enumerate(stages):
                logits = class_logits(logits_of(stage, inputs, f"stage {k}'s output")).cpu()
                width = int(logits.shape[1])
                conf[k].append(confidence_of(logits, kind))
                preds[k].append(logits.argmax(dim=1))
            targets.append(target)
    labelled = [t for t in targets if t is not None]
    if labelled and len(labelled) != len(targets):
        raise DataError(
            "Cascade.calibrate: only some batches carry labels; yield (inputs, labels) in "
            "every batch, or inputs alone in every batch"
        )
    return StageRecord(
        torch.stack([torch.cat(c) for c in conf]),
        torch.stack([torch.cat(p) for p in preds]),
        torch.cat(labelled) if labelled else None,
        macs,
        width,
    )


def simulate(confidence: torch.Tensor, thresholds: list[float]) -> torch.Tensor:
    """The stage that handles each row: the first ``k`` with ``confidence[k] >= t[k]``.

    Example:
        >>> conf = torch.tensor([[0.9, 0.5, 0.5], [0.1, 0.8, 0.2], [0.3, 0.3, 0.3]])
        >>> simulate(conf, [0.6, 0.7]).tolist()
        [0, 1, 2]
    """
    stages = confidence.shape[0]
    handled = torch.full((confidence.shape[1],), stages - 1, dtype=torch.long)
    open_rows = torch.ones(confidence.shape[1], dtype=torch.bool)
    for k, t in enumerate(thresholds):
        accept = open_rows & (confidence[k] >= t)
        handled[accept] = k
        open_rows &= ~accept
    return handled


def _outcome(record: StageRecord, thresholds: list[float], classes: list[int]) -> dict[str, Any]:
    handled = simulate(record.confidence, thresholds)
    stages = record.confidence.shape[0]
    reach = [float((handled >= k).double().mean()) for k in range(stages)]
    spent = sum(m * r for m, r in zip(record.macs, reach))
    out: dict[str, Any] = {"thresholds": thresholds, "reach": reach, "macs": spent}
    if record.targets is not None:
        pred = record.preds.gather(0, handled.unsqueeze(0))[0]
        hit = pred == record.targets
        out["accuracy"] = float(hit.double().mean())
        out["recall"] = {c: _recall(hit, record.targets, c) for c in classes}
    return out


def _recall(hit: torch.Tensor, targets: torch.Tensor, cls: int) -> float | None:
    of_class = targets == cls
    return float(hit[of_class].double().mean()) if bool(of_class.any()) else None


def _candidates(record: StageRecord, max_candidates: int) -> list[list[float]]:
    stages = record.confidence.shape[0]
    per_stage = max(3, int(max_candidates ** (1.0 / (stages - 1)) + 1e-9))
    grids = []
    for k in range(stages - 1):
        values = torch.unique(record.confidence[k].double())
        if values.numel() > per_stage - 2:
            q = torch.linspace(0.0, 1.0, per_stage - 2, dtype=torch.float64)
            values = torch.unique(torch.quantile(values, q))
        grids.append(sorted({0.0, math.inf, *(float(v) for v in values)}))
    return grids


def _check_fraction(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{name}={value!r} must be a number in [0, 1] (e.g. {name}=0.95)")


def _check_targets(
    record: StageRecord,
    target_accuracy: float | None,
    max_fallback_rate: float | None,
    target_recall: Mapping[int, float] | None,
) -> list[int]:
    _check_fraction("target_accuracy", target_accuracy)
    _check_fraction("max_fallback_rate", max_fallback_rate)
    if target_recall is not None and not isinstance(target_recall, Mapping):
        raise ConfigError(
            f"target_recall={target_recall!r} must be a dict {{class index: recall}}, "
            "e.g. {0: 0.98}"
        )
    classes = list(target_recall or {})
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < record.num_classes:
            raise ConfigError(
                f"target_recall names class {c!r}; classes are the ints 0..{record.num_classes - 1}"
            )
        _check_fraction(f"target_recall[{c}]", (target_recall or {})[c])
    if target_accuracy is None and max_fallback_rate is None and not classes:
        raise ConfigError(
            "Cascade.calibrate needs a goal: pass target_accuracy=, max_fallback_rate= "
            "and/or target_recall={class: recall}"
        )
    if record.targets is None and (target_accuracy is not None or classes):
        raise DataError(
            "target_accuracy and target_recall need labelled validation data, but the batches "
            "carry no labels; yield (inputs, labels), or calibrate with max_fallback_rate= alone"
        )
    return classes


_SLACK = 1e-6
"""Goals are met within this (a goal computed in float32 must not fail by rounding; shares of
N rows differ by at least 1/N)."""


def _feasible(
    o: dict[str, Any],
    target_accuracy: float | None,
    max_fallback_rate: float | None,
    target_recall: Mapping[int, float],
) -> bool:
    if max_fallback_rate is not None and o["reach"][1] > max_fallback_rate + _SLACK:
        return False
    if target_accuracy is not None and o["accuracy"] < target_accuracy - _SLACK:
        return False
    for c, want in target_recall.items():
        got = o["recall"][c]
        if got is None or got < want - _SLACK:
            return False
    return True


def _front(outcomes: list[dict[str, Any]], last_macs: float) -> list[dict[str, Any]]:
    """Cheapest-first Pareto front of (MACs, accuracy), thinned to 40 points."""
    front: list[dict[str, Any]] = []
    best = -1.0
    for o in sorted(outcomes, key=lambda o: (o["macs"], -o["accuracy"])):
        if o["accuracy"] > best:
            best = o["accuracy"]
            front.append(
                {
                    "thresholds": o["thresholds"],
                    "macs_ratio": o["macs"] / last_macs if last_macs else math.nan,
                    "accuracy": o["accuracy"],
                    "fallback_rate": o["reach"][1],
                }
            )
    thinned = front[:: max(1, math.ceil(len(front) / 40))]
    if thinned and thinned[-1] is not front[-1]:
        thinned.append(front[-1])  # keep the most accurate point
    return thinned


def search_thresholds(
    record: StageRecord,
    *,
    target_accuracy: float | None = None,
    max_fallback_rate: float | None = None,
    target_recall: Mapping[int, float] | None = None,
    max_candidates: int = 4096,
) -> CalibrationResult:
    """The thresholds chosen by the rule of the module doc, on recorded stage outcomes.

    Raises:
        ConfigError: a goal is out of range, names an unknown class, or none is given.
        DataError: a goal needs labels that ``record`` lacks.
        SearchError: no thresholds meet the goals (the best reached is named).

    Example:
        >>> conf = torch.tensor([[0.875, 0.625, 0.75, 0.5], [1.0, 1.0, 1.0, 1.0]])
        >>> preds = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 0]])
        >>> rec = StageRecord(conf, preds, torch.tensor([0, 1, 1, 0]), [1.0, 4.0], 2)
        >>> res = search_thresholds(rec, target_accuracy=1.0)
        >>> res.thresholds, res.fallback_rate, res.macs_ratio  # rows 1 and 3 go to stage 1
        ([0.75], 0.5, 0.75)
    """
    if (
        isinstance(max_candidates, bool)
        or not isinstance(max_candidates, int)
        or max_candidates < 2
    ):
        raise ConfigError(f"max_candidates={max_candidates!r} must be an int >= 2 (e.g. 4096)")
    classes = _check_targets(record, target_accuracy, max_fallback_rate, target_recall)
    recall_goals = {c: float((target_recall or {})[c]) for c in classes}
    labelled = record.targets is not None
    outcomes = [
        _outcome(record, list(t), classes)
        for t in itertools.product(*_candidates(record, max_candidates))
    ]
    ok = [o for o in outcomes if _feasible(o, target_accuracy, max_fallback_rate, recall_goals)]
    quality = target_accuracy is not None or bool(classes)
    if not ok:
        raise SearchError(_infeasible(outcomes, target_accuracy, max_fallback_rate, recall_goals))
    if quality:
        best = min(ok, key=lambda o: (o["macs"], -o["accuracy"]))
        objective = "min_macs"
    elif labelled:
        best = min(ok, key=lambda o: (-o["accuracy"], o["macs"]))
        objective = "max_accuracy"
    else:
        best = max(ok, key=lambda o: o["macs"])
        objective = "max_fallback"
    last = record.macs[-1]
    return CalibrationResult(
        thresholds=[float(t) for t in best["thresholds"]],
        objective=objective,
        accuracy=best.get("accuracy"),
        recall=dict(best.get("recall", {})),
        reach=best["reach"],
        fallback_rate=best["reach"][1],
        macs_per_input=best["macs"],
        macs_ratio=best["macs"] / last if last else math.nan,
        n=int(record.confidence.shape[1]),
        combinations=len(outcomes),
        front=_front(outcomes, last) if labelled else [],
    )


def _infeasible(
    outcomes: list[dict[str, Any]],
    target_accuracy: float | None,
    max_fallback_rate: float | None,
    target_recall: Mapping[int, float],
) -> str:
    goals = []
    if max_fallback_rate is not None:  # the bests below are those within the rate
        outcomes = [o for o in outcomes if o["reach"][1] <= max_fallback_rate + _SLACK]
    if target_accuracy is not None:
        best = max(o["accuracy"] for o in outcomes)
        goals.append(f"target_accuracy={target_accuracy} (best reached {best:.4f})")
    for c, want in target_recall.items():
        best = max((o["recall"][c] or 0.0) for o in outcomes)
        goals.append(f"target_recall[{c}]={want} (best reached {best:.4f})")
    if max_fallback_rate is not None:
        goals.append(f"max_fallback_rate={max_fallback_rate} (the bests are within it)")
    return (
        f"no cascade thresholds meet {' and '.join(goals)} together on the "
        f"{len(outcomes)} candidates tried on the validation data; lower a target, raise "
        "max_fallback_rate, or end the cascade with a stronger stage"
    )
