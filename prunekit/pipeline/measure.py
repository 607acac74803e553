"""Measurements of a run: the evaluation dicts a report is rendered from, a quick accuracy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..evaluation import EvaluationReport, evaluate
from ..recipe import DataBundle, Recipe

__all__ = ["accuracy_on", "evaluation_dict", "measure", "newly_wrong"]


@torch.no_grad()
def accuracy_on(model: nn.Module, data: Iterable[Any]) -> float:
    """Top-1 accuracy of ``model`` (eval mode, flags restored) over ``(x, y)`` batches.

    Example:
        >>> net = torch.nn.Linear(2, 2)
        >>> with torch.no_grad():
        ...     _ = net.weight.copy_(torch.eye(2)); _ = net.bias.zero_()
        >>> accuracy_on(net, [(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))])
        0.5
    """
    was = model.training
    model.eval()
    right = total = 0
    for x, y, *_ in data:
        right += int((model(x).argmax(dim=-1) == y).sum())
        total += int(y.numel())
    model.train(was)
    return right / max(total, 1)


def measure(
    model: nn.Module,
    recipe: Recipe,
    data: DataBundle,
    *,
    reference: nn.Module | None = None,
    latency: bool | None = None,
) -> EvaluationReport:
    """Evaluate ``model`` on the recipe's evaluation split, with cost and (optionally) latency."""
    spec = recipe.evaluation
    return evaluate(
        model, data.split(spec.split), reference=reference, example_inputs=data.example_inputs(),
        latency=spec.latency if latency is None else latency, memory=False,
        batch_sizes=tuple(spec.batch_sizes), threads=spec.latency_threads, runs=spec.runs,
        warmup=min(10, spec.runs), num_classes=data.num_classes,
    )  # fmt: skip


def evaluation_dict(report: EvaluationReport) -> dict[str, Any]:
    """The keys a :class:`~prunekit.report.RunRecord` evaluation understands.

    Example:
        >>> from torch.utils.data import TensorDataset
        >>> data = TensorDataset(torch.randn(8, 3), torch.tensor([0, 1] * 4))
        >>> rep = evaluate(torch.nn.Linear(3, 2), data, latency=False, memory=False)
        >>> sorted(evaluation_dict(rep))
        ['accuracy', 'bytes', 'confusion', 'ece', 'loss', 'macro_f1', 'macs', 'params']
    """
    q = report.quality
    out: dict[str, Any] = {"accuracy": float(getattr(q, "accuracy", float("nan")))}
    for key, attr in (("macro_f1", "f1_macro"), ("ece", "ece"), ("loss", "loss")):
        value = getattr(q, attr, None)
        if value is not None:
            out[key] = float(value)
    if report.stability is not None:
        out["agreement"] = float(report.stability.agreement)
    if report.cost is not None:
        out.update(params=report.cost.params, macs=report.cost.macs)
        out["bytes"] = report.cost.state_dict_bytes
        if report.cost.latency:
            lat = report.cost.latency
            out["latency_ms"] = {str(r.batch_size): r.median_ms for r in lat}
            out["latency_iqr_ms"] = {str(r.batch_size): [r.q1_ms, r.q3_ms] for r in lat}
            out["latency_threads"] = lat[0].threads
    confusion = getattr(q, "confusion_matrix", None)
    if confusion is not None:
        out["confusion"] = confusion
    return out


def newly_wrong(report: EvaluationReport) -> list[dict[str, int]]:
    """Examples the reference got right and ``report``'s model gets wrong (report format)."""
    flips = report.stability.flips if report.stability is not None else None
    if flips is None:
        return []
    return [
        {"index": f.index, "true": f.target, "pred_before": f.reference_pred, "pred_after": f.pred}
        for f in flips.newly_wrong
    ]
