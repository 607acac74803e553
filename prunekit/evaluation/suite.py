"""One call that evaluates a model: quality, stability against a reference, and cost.

:func:`evaluate` runs the model (and its reference, on the same batches) over the data once,
computes the task's quality metrics, the stability against the reference when one is given,
and the full cost profile, and returns an :class:`EvaluationReport` whose :meth:`to_dict` is
plain JSON. :func:`prunekit.evaluation.compare` turns two reports into before/after deltas.

Tasks:

- ``"classification"``: logits ``(N, C)`` and class targets; quality is
  :class:`~prunekit.evaluation.quality.ClassificationQuality`; with a reference, stability is a
  :class:`~prunekit.evaluation.stability.StabilityReport` (agreement, error flips, calibration).
- ``"regression"``: predictions and float targets of the same shape; quality is
  :class:`~prunekit.evaluation.regression.RegressionQuality`.
- ``"embedding"``: embeddings; needs ``reference`` and reports the cosine fidelity to its
  embeddings (:class:`~prunekit.evaluation.fidelity.EmbeddingFidelity`); targets are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from prunekit.errors import ConfigError, DataError
from prunekit.evaluation._runtime import model_device
from prunekit.evaluation.confidence import DEFAULT_BINS
from prunekit.evaluation.cost_profile import CostProfile, profile_cost
from prunekit.evaluation.fidelity import EmbeddingFidelity, cosine_fidelity
from prunekit.evaluation.predictions import Predictions, collect_predictions, first_inputs
from prunekit.evaluation.quality import ClassificationQuality, classification_quality
from prunekit.evaluation.regression import RegressionQuality, regression_quality
from prunekit.evaluation.stability import StabilityReport, stability

__all__ = ["TASKS", "EvaluationReport", "Quality", "evaluate"]

TASKS = ("classification", "regression", "embedding")
"""The tasks :func:`evaluate` knows."""

Quality = ClassificationQuality | RegressionQuality | EmbeddingFidelity
"""The quality record of one of :data:`TASKS`."""

_COUNTS = ("num_samples", "num_classes")  # not metrics: left out of summary()
_QUALITY_TYPES: dict[str, Any] = {
    "classification": ClassificationQuality,
    "regression": RegressionQuality,
    "embedding": EmbeddingFidelity,
}


@dataclass
class EvaluationReport:
    """Quality, stability and cost of one model on one dataset.

    Attributes:
        task: One of :data:`TASKS`.
        num_samples: Samples evaluated.
        quality: The task's quality record.
        stability: Agreement with the reference (classification with a reference only).
        cost: Parameters, MACs, bytes, memory and latency (``None`` if not measured).
        meta: How it was measured (torch version, device, threads ...).

    Example:
        >>> from prunekit.evaluation.regression import regression_quality
        >>> r = EvaluationReport("regression", 2, regression_quality([1.0, 2.0], [1.0, 2.0]))
        >>> EvaluationReport.from_dict(r.to_dict()) == r
        True
    """

    task: str
    num_samples: int
    quality: Quality
    stability: StabilityReport | None = None
    cost: CostProfile | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict`` (``json.dumps`` works on it)."""
        return {
            "task": self.task,
            "num_samples": self.num_samples,
            "quality": self.quality.to_dict(),
            "stability": None if self.stability is None else self.stability.to_dict(),
            "cost": None if self.cost is None else self.cost.to_dict(),
            "meta": dict(self.meta),
        }

    def summary(self) -> dict[str, float]:
        """The headline numbers as one flat ``{name: value}`` dict.

        Scalar quality metrics keep their names (``accuracy``, ``f1_macro``, ``r2`` ...; top-k
        become ``top_5_accuracy``), then ``agreement``, ``params``, ``macs``,
        ``state_dict_bytes``, ``peak_bytes@B``, ``latency_ms@B`` and ``throughput@B`` for each
        measured batch size ``B``. Feed the summaries of several seeds or folds to
        :func:`~prunekit.evaluation.spread.metric_spreads` for ``mean ± std``.
        """
        out: dict[str, float] = {}
        for name, value in self.quality.to_dict().items():
            if name not in _COUNTS and isinstance(value, (int, float)):
                out[name] = float(value)
        for k, value in getattr(self.quality, "top_k", {}).items():
            out[f"top_{k}_accuracy"] = value
        if self.stability is not None:
            out["agreement"] = self.stability.agreement
        if self.cost is not None:
            out.update(_cost_summary(self.cost))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationReport:
        """Rebuild a report from :meth:`to_dict` output (e.g. a saved JSON file)."""
        try:
            task = _check_task(data["task"])
            return cls(
                task=task,
                num_samples=int(data["num_samples"]),
                quality=_QUALITY_TYPES[task].from_dict(data["quality"]),
                stability=_optional(StabilityReport.from_dict, data.get("stability")),
                cost=_optional(CostProfile.from_dict, data.get("cost")),
                meta=dict(data.get("meta", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"malformed evaluation report ({type(exc).__name__}: {exc}); pass the output of "
                "EvaluationReport.to_dict()"
            ) from exc


def evaluate(
    model: nn.Module,
    data: Iterable[Any] | Dataset[Any],
    *,
    reference: nn.Module | None = None,
    task: str = "classification",
    example_inputs: Any = None,
    cost: bool = True,
    latency: bool = True,
    memory: bool = True,
    batch_sizes: Sequence[int] = (1, 64),
    threads: int | None = None,
    warmup: int = 10,
    runs: int = 50,
    num_classes: int | None = None,
    top_k: Sequence[int] = (1, 5),
    n_bins: int = DEFAULT_BINS,
    max_batches: int | None = None,
    output_fn: Callable[[Any], torch.Tensor] | None = None,
) -> EvaluationReport:
    """Evaluate ``model`` on ``data``: quality, stability against ``reference``, and cost.

    Args:
        model: The model to evaluate (e.g. the pruned one).
        data: A ``DataLoader``, an iterable of batches or a map-style ``Dataset`` (see
            :mod:`prunekit.evaluation.predictions` for the batch formats).
        reference: The unpruned model, run on the same batches (needed for ``"embedding"``).
        task: One of :data:`TASKS`.
        example_inputs: Inputs for the cost measurement (default: the first batch of ``data``).
        cost: Measure the cost profile at all (params, MACs, bytes; memory and latency below).
        latency: Measure latency and throughput at each of ``batch_sizes``.
        memory: Measure peak forward memory at each of ``batch_sizes``.
        batch_sizes: Batch sizes of the memory and latency measurements.
        threads: CPU threads during the latency measurement (``None``: the current count).
        warmup: Untimed latency runs; ``runs``: timed runs per batch size.
        num_classes: Size of the label space (classification; default: inferred).
        top_k: The ``k`` of the top-k accuracies (classification).
        n_bins: Bins of the expected calibration error (classification).
        max_batches: Evaluate only the first batches (``None``: all).
        output_fn: Maps a raw model output to the tensor to evaluate.

    Returns:
        An :class:`EvaluationReport`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from torch.utils.data import TensorDataset
        >>> data = TensorDataset(torch.randn(20, 4), torch.randint(0, 3, (20,)))
        >>> report = evaluate(nn.Linear(4, 3), data, latency=False, memory=False)
        >>> report.num_samples, report.cost.params, 0.0 <= report.quality.accuracy <= 1.0
        (20, 15, True)
    """
    _check_task(task)
    if task == "embedding" and reference is None:
        raise ConfigError(
            "task='embedding' measures fidelity to a reference model; pass reference=<the "
            "unpruned model>"
        )
    preds = collect_predictions(
        model, data, reference=reference, max_batches=max_batches, output_fn=output_fn
    )
    quality, stable = _quality(preds, task, num_classes=num_classes, top_k=top_k, n_bins=n_bins)
    profile = None
    if cost:
        inputs = first_inputs(data) if example_inputs is None else example_inputs
        profile = profile_cost(
            model, inputs, latency=latency, memory=memory, batch_sizes=batch_sizes,
            threads=threads, warmup=warmup, runs=runs,
        )  # fmt: skip
    meta = {
        "torch": torch.__version__,
        "device": str(model_device(model)),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "max_batches": max_batches,
        "reference": reference is not None,
    }
    return EvaluationReport(task, len(preds), quality, stable, profile, meta)


def _quality(
    preds: Predictions, task: str, *, num_classes: int | None, top_k: Sequence[int], n_bins: int
) -> tuple[Quality, StabilityReport | None]:
    if task == "embedding":
        if preds.reference_outputs is None:
            raise ConfigError("task='embedding' needs reference outputs; pass reference=<model>")
        return cosine_fidelity(preds.outputs, preds.reference_outputs), None
    if preds.targets is None:
        raise DataError(
            f"task={task!r} needs targets but the data yields none; yield (inputs, targets) "
            "batches, or use task='embedding' with a reference"
        )
    if task == "regression":
        return regression_quality(preds.outputs, preds.targets), None
    quality = classification_quality(
        preds.outputs, preds.targets, num_classes=num_classes, top_k=top_k, n_bins=n_bins
    )
    stable = None
    if preds.reference_outputs is not None:
        stable = stability(preds.outputs, preds.reference_outputs, preds.targets, n_bins=n_bins)
    return quality, stable


def _cost_summary(cost: CostProfile) -> dict[str, float]:
    out = {
        "params": float(cost.params),
        "macs": float(cost.macs),
        "state_dict_bytes": float(cost.state_dict_bytes),
    }
    for mem in cost.memory:
        if mem.peak_bytes is not None:
            out[f"peak_bytes@{mem.batch_size}"] = float(mem.peak_bytes)
    for lat in cost.latency:
        out[f"latency_ms@{lat.batch_size}"] = lat.median_ms
        out[f"throughput@{lat.batch_size}"] = lat.throughput
    return out


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ConfigError(f"task={task!r} is not one of {list(TASKS)}")
    return task


def _optional(build: Callable[[dict[str, Any]], Any], value: dict[str, Any] | None) -> Any:
    return None if value is None else build(value)
