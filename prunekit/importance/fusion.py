"""Fusion: several criteria combined into one score per unit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..graph.dependency import DependencyGraph, Group
from .base import NORMALIZATIONS, Criterion, average_ranks, check_choice, normalize_scores
from .registry import Importance, get_importance

__all__ = ["Fuse"]

_METHODS = ("weighted", "rank")


@dataclass
class Fuse(Criterion):
    """Combine criteria: a weighted sum of per-group normalised scores, or of ranks.

    ``method="weighted"``: ``sum_i w_i * normalize(s_i)`` with ``normalize`` applied per group
    (default ``"mean"``: divide by the mean ``|score|``, so criteria of different units
    combine). ``method="rank"``: ``sum_i w_i * rank(s_i) / (n - 1)`` (rank average; ties
    share their average rank). Weights default to equal and are rescaled to sum to 1.
    Criteria are names from the registry or objects; data-driven ones are prepared on the
    analysed model by :meth:`prepare`.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.importance import Fuse
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> fused = Fuse(["l1", "l2"], weights=[0.7, 0.3], method="rank")
        >>> prunekit.prune(net, torch.randn(1, 3), ratio=0.5, importance=fused).model[0].out_features
        2
    """

    criteria: Sequence[str | Importance]
    weights: Sequence[float] | None = None
    method: str = "weighted"
    normalize: str = "mean"
    resolved_: list[Importance] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        check_choice("Fuse", "method", self.method, _METHODS)
        check_choice("Fuse", "normalize", self.normalize, NORMALIZATIONS)
        if isinstance(self.criteria, str) or not self.criteria:
            raise ConfigError(
                f"Fuse needs a list of criteria, got {self.criteria!r}; e.g. Fuse(['taylor', 'l2'])"
            )
        weights = [1.0] * len(self.criteria) if self.weights is None else list(self.weights)
        if (
            len(weights) != len(self.criteria)
            or any(float(w) < 0 for w in weights)
            or sum(weights) <= 0
        ):
            raise ConfigError(
                f"Fuse weights {self.weights!r} must be {len(self.criteria)} non-negative numbers "
                "with a positive sum, one per criterion"
            )
        total = float(sum(weights))
        self.weights = [float(w) / total for w in weights]
        self.resolved_ = [get_importance(c) for c in self.criteria]

    @property
    def data(self) -> Any:
        """The calibration batches of the first data-driven member (``None`` if none has
        any): what a cut re-estimates BatchNorm statistics on when no ``bn_data``
        is given, as for a single data-driven criterion."""
        return next(
            (d for c in self.resolved_ if (d := getattr(c, "data", None)) is not None), None
        )

    def prepare(self, model: nn.Module, graph: DependencyGraph) -> None:
        """Prepare every data-driven member criterion (shared calibrations run once)."""
        for c in self.resolved_:
            c.prepare(model, graph)

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        assert self.weights is not None  # set in __post_init__
        out = torch.zeros(group.num_units)
        for w, c in zip(self.weights, self.resolved_):
            s = c(group, tensors).detach().float().cpu()
            if self.method == "rank":
                out += w * average_ranks(s) / max(group.num_units - 1, 1)
            else:
                out += w * normalize_scores(s, self.normalize)
        return out
