"""Greedy reconstruction (ThiNet / NISP style): remove the units the next layer misses least."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..graph.dependency import Group
from .consumers import Consumer
from .registry import register_importance
from .setaware import SetAwareCriterion, greedy_scores

__all__ = ["Reconstruction"]


@dataclass
class Reconstruction(SetAwareCriterion):
    """Greedy set selection: repeatedly remove the unit whose removal, after a least-squares
    refit of the consumer layers on the calibration inputs, changes their outputs least.

    Each round, for every unit still in, the increase of the consumers' output error after
    refitting their remaining input columns (ridge least squares: the normal equations of
    :mod:`prunekit.lstsq`, ``damp`` as the relative ridge) is computed exactly from the
    current inverse Gram; the cheapest ``ceil(units / steps)`` go (default ``steps=None``:
    one unit per round), and the refit weights and inverse are downdated. A unit's score is
    the consumers' total refit error once it is removed (its cumulative error, so the order
    of removal is the order of the scores, and scores compare across groups): the first
    unit removed scores lowest. Redundant units (one reconstructible from the others) thus
    go before a unit that carries information of its own, and two copies of a unit are
    never both judged harmless.

    Only one group's consumers are measured at a time (their Grams, ``O(d^2)``, not their
    activations). Cost per group: one forward pass over the calibration batches and, per
    round, one ``d x d`` downdate per consumer.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.importance import Reconstruction
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> crit = Reconstruction(data=[torch.randn(16, 3)])
        >>> prunekit.prune(net, torch.randn(1, 3), ratio=0.5, importance=crit).model[0].out_features
        2
        >>> crit.cost_["solves"]   # one inversion + 4 downdates
        5
    """

    steps: int | None = None

    def __post_init__(self) -> None:
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise ConfigError(
                f"Reconstruction steps={self.steps!r} must be a positive int or None "
                "(one unit per round)"
            )
        super().__post_init__()

    def score_consumers(
        self, group: Group, pairs: list[tuple[Consumer, torch.Tensor]]
    ) -> torch.Tensor:
        n = group.num_units
        per = 1 if self.steps is None else max(1, math.ceil(n / self.steps))
        return greedy_scores(group, pairs, per, self.cost_)


register_importance("reconstruction", Reconstruction)
