"""What a cascade costs and gives on real data, measured: :func:`evaluate_cascade`.

- quality: the cascade's accuracy and per-class recall, next to each stage alone;
- routing: the share of inputs each stage handled and the share that reached it (the
  fallback rate of stage ``k`` is the share that went past it);
- MACs spent per input: each stage's MACs per row (prunekit's counter,
  :func:`prunekit.cost.count_macs`) times the rows it actually processed, summed and divided
  by the inputs — the rows are counted while routing, not estimated;
- latency (optional): the cascade and every stage alone timed side by side
  (:mod:`.timing`) on one batch of the data (ms per input, median with its quartiles) and on
  single inputs (mean ms per input over the first rows, which mixes fast and slow paths as
  deployment does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import torch

from prunekit.errors import DataError
from prunekit.evaluation.quality import per_class_recall

from ._rows import data_batches, first_rows, logits_of, macs_per_row, rows_of, take_rows
from .cascade import Cascade
from .confidence import class_logits
from .timing import Timing, time_interleaved, time_per_row

__all__ = ["CascadeReport", "StageReport", "evaluate_cascade"]


@dataclass
class StageReport:
    """One model alone (a stage of the cascade) on the same data.

    Attributes:
        index: The stage. accuracy, recall: Its quality alone (``None`` without labels).
        macs_per_input: Its MACs per row. batch, single: Its latency (``None`` if untimed).
    """

    index: int
    accuracy: float | None
    recall: list[float | None]
    macs_per_input: float
    batch: Timing | None = None
    single: Timing | None = None


@dataclass
class CascadeReport:
    """The cascade measured on a dataset (see the module doc).

    Attributes:
        n: Inputs. thresholds, confidence: The cascade's settings.
        accuracy, recall: The cascade's quality (``None`` / empty without labels).
        handled: Share of inputs each stage answered. reach: Share that reached each stage.
        fallback_rate: ``reach[1]``, the share stage 0 passed on.
        rows_processed: Rows each stage ran on.
        macs_spent_per_input: ``sum_k macs_k * rows_processed[k] / n``.
        macs_ratio: That over the last stage's MACs per input.
        batch, single: The cascade's latency (``None`` if untimed); ``batch_fallback_rate``
            is the fallback share within the timed batch.
        stages: One :class:`StageReport` per stage.
    """

    n: int
    thresholds: list[float]
    confidence: str
    accuracy: float | None
    recall: list[float | None]
    handled: list[float]
    reach: list[float]
    fallback_rate: float
    rows_processed: list[int]
    macs_spent_per_input: float
    macs_ratio: float
    stages: list[StageReport] = field(default_factory=list)
    batch: Timing | None = None
    single: Timing | None = None
    batch_fallback_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (an infinite threshold is written as ``"inf"``)."""
        out = asdict(self)
        out["thresholds"] = [t if t != float("inf") else "inf" for t in self.thresholds]
        return out

    def table(self, names: list[str] | None = None) -> str:
        """A Markdown table: every stage alone, then the cascade."""
        names = names or [f"stage {s.index}" for s in self.stages]
        last = self.stages[-1].macs_per_input or 1.0
        head = (
            "| model | accuracy | MACs / input | MACs ratio | batch ms / input (IQR) "
            "| single-input mean ms |\n|---|---|---|---|---|---|"
        )
        rows = [
            _row(name, s.accuracy, s.macs_per_input, last, s.batch, s.single)
            for name, s in zip(names, self.stages)
        ]
        rows.append(
            _row("cascade", self.accuracy, self.macs_spent_per_input, last, self.batch, self.single)
        )
        return "\n".join([head, *rows])


def _row(
    name: str,
    acc: float | None,
    macs: float,
    last: float,
    batch: Timing | None,
    single: Timing | None,
) -> str:
    accuracy = "-" if acc is None else f"{100 * acc:.2f}%"
    b = "-"
    if batch is not None:
        q1, q3 = batch.q1_ms / batch.rows, batch.q3_ms / batch.rows
        b = f"{batch.per_input_ms:.4f} ({q1:.4f}-{q3:.4f})"
    s = "-" if single is None else f"{single.mean_ms:.3f}"
    return f"| {name} | {accuracy} | {macs:,.0f} | {macs / last:.3f} | {b} | {s} |"


def _quality(
    preds: torch.Tensor, targets: torch.Tensor | None, classes: int
) -> tuple[float | None, list[float | None]]:
    if targets is None:
        return None, []
    acc = float((preds == targets).double().mean())
    return acc, per_class_recall(preds, targets, num_classes=classes)


@dataclass
class _Pass:
    """One pass over the data: the routed predictions and each stage's alone."""

    preds: torch.Tensor
    stage: torch.Tensor
    alone: list[torch.Tensor]
    labels: torch.Tensor | None
    rows: list[int]
    macs: list[float]
    classes: int


def _collect(cascade: Cascade, data: Iterable[Any]) -> _Pass:
    stages = len(cascade.stages)
    preds: list[torch.Tensor] = []
    handled: list[torch.Tensor] = []
    targets: list[torch.Tensor | None] = []
    alone: list[list[torch.Tensor]] = [[] for _ in range(stages)]
    rows, classes = [0] * stages, 0
    macs: list[float] = []
    with torch.inference_mode():
        for inputs, target in data_batches(data, "evaluate_cascade"):
            if not macs:
                macs = [macs_per_row(stage, inputs) for stage in cascade.stages]
            routed = cascade.route(inputs)
            rows = [a + b for a, b in zip(rows, routed.rows)]
            preds.append(routed.outputs.argmax(dim=1).cpu())
            handled.append(routed.stage)
            classes = int(routed.outputs.shape[1])
            for k, stage in enumerate(cascade.stages):
                logits = class_logits(logits_of(stage, inputs, f"stage {k}'s output"))
                alone[k].append(logits.argmax(dim=1).cpu())
            targets.append(target)
    labelled = [t for t in targets if t is not None]
    if labelled and len(labelled) != len(targets):
        raise DataError(
            "evaluate_cascade: only some batches carry labels; yield (inputs, labels) in "
            "every batch, or inputs alone in every batch"
        )
    labels = torch.cat(labelled) if labelled else None
    return _Pass(torch.cat(preds), torch.cat(handled), [torch.cat(a) for a in alone], labels,
                 rows, macs, classes)  # fmt: skip


def evaluate_cascade(
    cascade: Cascade,
    data: Iterable[Any],
    *,
    latency: bool = True,
    batch_size: int = 256,
    single_rows: int = 64,
    runs: int = 20,
    warmup: int = 3,
    threads: int | None = None,
) -> CascadeReport:
    """Measure ``cascade`` on ``data`` (see the module doc).

    Args:
        cascade: The cascade (its thresholds as set).
        data: A DataLoader (or list) of ``(inputs, labels)`` or inputs batches.
        latency: Also time the cascade and each stage alone.
        batch_size: Rows of the timed batch (the data's first rows).
        single_rows: How many single inputs the per-input timing uses.
        runs, warmup: Timed and untimed calls of the batch timing.
        threads: Intra-op threads while timing (``None``: as is).

    Returns:
        A :class:`CascadeReport`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> data = [(torch.randn(16, 4), torch.randint(0, 3, (16,)))]
        >>> cascade = Cascade([nn.Linear(4, 3), nn.Linear(4, 3)], threshold=0.4)
        >>> rep = evaluate_cascade(cascade, data, latency=False)
        >>> rep.rows_processed[0], sum(rep.handled)
        (16, 1.0)
    """
    run = _collect(cascade, data)
    stages, n, stage_of = len(cascade.stages), int(run.stage.numel()), run.stage
    acc, recall = _quality(run.preds, run.labels, run.classes)
    spent = sum(m * r for m, r in zip(run.macs, run.rows)) / n
    report = CascadeReport(
        n=n,
        thresholds=list(cascade.thresholds),
        confidence=cascade.confidence,
        accuracy=acc,
        recall=recall,
        handled=[float((stage_of == k).double().mean()) for k in range(stages)],
        reach=[float((stage_of >= k).double().mean()) for k in range(stages)],
        fallback_rate=float((stage_of >= 1).double().mean()),
        rows_processed=run.rows,
        macs_spent_per_input=spent,
        macs_ratio=spent / run.macs[-1] if run.macs[-1] else float("nan"),
    )
    for k in range(stages):
        a, r = _quality(run.alone[k], run.labels, run.classes)
        report.stages.append(StageReport(k, a, r, run.macs[k]))
    if latency:
        _time(cascade, report, first_rows(data, batch_size, "evaluate_cascade"), single_rows,
              runs=runs, warmup=warmup, threads=threads)  # fmt: skip
    return report


def _time(
    cascade: Cascade,
    report: CascadeReport,
    batch: Any,
    single_rows: int,
    *,
    runs: int,
    warmup: int,
    threads: int | None,
) -> None:
    """Fill the latency fields of ``report``: cascade first, then every stage alone."""
    n = rows_of(batch, "evaluate_cascade")
    with torch.inference_mode():
        report.batch_fallback_rate = cascade.route(batch).rows[1] / n
    models = [cascade, *cascade.stages]
    calls = [partial(logits_of, m, batch, "latency") for m in models]
    timings = time_interleaved(calls, rows=n, warmup=warmup, runs=runs, threads=threads)
    singles = [take_rows(batch, torch.tensor([i]), n) for i in range(min(single_rows, n))]
    per_row = time_per_row([partial(_call, m) for m in models], singles, threads=threads)
    report.batch, report.single = timings[0], per_row[0]
    for stage, b, s in zip(report.stages, timings[1:], per_row[1:]):
        stage.batch, stage.single = b, s


def _call(model: torch.nn.Module, inputs: Any) -> torch.Tensor:
    return logits_of(model, inputs, "latency")
