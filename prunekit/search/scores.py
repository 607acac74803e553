"""Score each group once per search: every one-step candidate is cut from the same model.

A search cuts the unpruned model again for every candidate (each bisection step, each
scope). The scores of a criterion do not depend on how many units are then removed, nor on
the scope, so a data-driven criterion (whose scoring costs calibration passes) is run once
per group and its scores are reused by every later candidate of the same search
(:class:`SharedScores`). Multi-step candidates re-score on the partly cut model and are not
shared.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..graph.dependency import DependencyGraph, Group
from ..importance import Criterion, Importance, get_importance
from ..plan import PruningPlan

__all__ = ["SharedScores", "relabel"]


class SharedScores(Criterion):
    """Wraps a criterion: each group's scores are computed once and then reused.

    ``prepare`` is deferred: the wrapped criterion is prepared (on the model being cut) only
    when a group is asked for whose scores are not stored yet. Valid only while every model
    it scores is the same unpruned model (one-step cuts of one search).

    Example:
        >>> import prunekit
        >>> calls = []
        >>> def width(group, tensors):
        ...     calls.append(group.key)
        ...     return torch.arange(group.num_units, dtype=torch.float32)
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> shared = SharedScores(width)
        >>> for r in (0.25, 0.5):
        ...     _ = prunekit.prune(net, torch.randn(1, 3), ratio=r, importance=shared)
        >>> len(calls), shared.hits
        (1, 1)
    """

    def __init__(self, inner: Any) -> None:
        self.inner: Importance = get_importance(inner)
        self.cache: dict[str, torch.Tensor] = {}
        self.hits = 0
        self._pending: tuple[nn.Module, DependencyGraph] | None = None

    def prepare(self, model: nn.Module, graph: DependencyGraph) -> None:
        """Remember the model; the wrapped criterion is prepared on first need."""
        self._pending = (model, graph)

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        cached = self.cache.get(group.key)
        if cached is not None:
            self.hits += 1
            return cached.clone()
        if self._pending is not None:
            self.inner.prepare(*self._pending)
            self._pending = None
        scores = self.inner(group, tensors).detach().float().cpu()
        self.cache[group.key] = scores
        return scores.clone()

    def __repr__(self) -> str:
        return f"SharedScores({self.inner!r})"


def relabel(plans: list[PruningPlan], importance: Any) -> None:
    """Name the wrapped criterion, not :class:`SharedScores`, in plans cut through one.

    Example:
        >>> plan = PruningPlan({"g": [0]}, {"g": 2}, {"importance": "SharedScores"})
        >>> relabel([plan], SharedScores(lambda g, t: torch.ones(g.num_units)))
        >>> plan.meta["importance"]
        'FunctionCriterion'
    """
    if not isinstance(importance, SharedScores):
        return
    for plan in plans:
        if plan.meta.get("importance") == type(importance).__name__:
            plan.meta["importance"] = type(importance.inner).__name__
