"""Gradient criteria: mean |gradient|, first-order Taylor, and OBD with a Fisher diagonal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..errors import ConfigError
from ..graph.dependency import Group
from .base import REDUCTIONS, check_choice, reduce_members
from .datadriven import DataCriterion
from .magnitude import unit_slices
from .registry import register_importance
from .stats import CalibrationStats

__all__ = ["MeanGradient", "Taylor", "Fisher", "member_sums"]

_TAYLOR_VARIANTS = ("abs", "sq", "elementwise")


def member_sums(
    group: Group,
    stats: CalibrationStats,
    stat: str,
    weight: dict[str, torch.Tensor] | None = None,
    *,
    absolute: bool = False,
) -> list[torch.Tensor]:
    """Per parameter member: the per-unit sum of ``mean(stat)`` (its absolute value per
    element if ``absolute``; times ``weight²`` if given)."""
    out = []
    for m in group.members:
        if not m.is_param or not stats.has(stat, m.name):
            continue
        t = stats.mean(stat, m.name)
        t = t.abs() if absolute else t
        if weight is not None:
            t = t * weight[m.name].detach().float() ** 2
        out.append(unit_slices(m, t).sum(1))
    if not out:
        raise ConfigError(
            f"no calibration stats for any member of group {group.key}; the stats were "
            "collected on another model: prepare the criterion on the model being pruned"
        )
    return out


@dataclass
class MeanGradient(DataCriterion):
    """``E|dL/dW_u|``: the mean absolute gradient over the unit's parameters and batches.

    Each member contributes the mean over its slice; members combine with ``reduction``.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.importance import MeanGradient
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
        >>> crit = MeanGradient(data=data, loss_fn=lambda o, b: torch.nn.functional.cross_entropy(o, b[1]))
        >>> prunekit.prune(net, torch.randn(1, 3), ratio=0.5, importance=crit).model[0].out_features
        2
    """

    reduction: str = "mean"
    NEEDS: ClassVar[tuple[str, ...]] = ("grad_abs",)
    requires_loss: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_choice("MeanGradient", "reduction", self.reduction, REDUCTIONS)
        super().__post_init__()

    def score(
        self, group: Group, tensors: dict[str, torch.Tensor], stats: CalibrationStats
    ) -> torch.Tensor:
        per = []
        for m in group.members:
            if m.is_param and stats.has("grad_abs", m.name):
                per.append(unit_slices(m, stats.mean("grad_abs", m.name)).mean(1))
        if not per:
            member_sums(group, stats, "grad_abs")  # raises the helpful error
        return reduce_members(per, self.reduction)


@dataclass
class Taylor(DataCriterion):
    """First-order Taylor estimate of the loss change when unit u is removed.

    ``variant="abs"`` (Molchanov et al. 2019): ``|sum over all of u's parameters of w * g|``
    with ``g`` the gradient averaged over batches, i.e. ``|E[sum w g]|`` — the first-order
    ``ΔL`` of setting those weights to zero. ``variant="sq"`` (Molchanov et al. 2017):
    ``E[sum (w g)^2]`` over batches. ``variant="elementwise"``: ``sum |w * g|`` over the
    unit's parameters, each product's sign dropped before summing (no cancellation between
    weights; Torch-Pruning's default Taylor). Every member of the group contributes (producer
    rows, biases, norm parameters, consumer columns).

    Example:
        >>> import torch, prunekit
        >>> from prunekit.importance import Taylor
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
        >>> crit = Taylor(data=data, loss_fn=lambda o, b: torch.nn.functional.cross_entropy(o, b[1]))
        >>> prunekit.prune(net, torch.randn(1, 3), ratio=0.5, importance=crit).model[0].out_features
        2
    """

    variant: str = "abs"
    requires_loss: ClassVar[bool] = True
    zero_unit_lowest: ClassVar[bool] = True

    def needs(self) -> tuple[str, ...]:
        return ("wg_sq",) if self.variant == "sq" else ("wg",)

    def __post_init__(self) -> None:
        check_choice("Taylor", "variant", self.variant, _TAYLOR_VARIANTS)
        super().__post_init__()

    def score(
        self, group: Group, tensors: dict[str, torch.Tensor], stats: CalibrationStats
    ) -> torch.Tensor:
        if self.variant == "abs":
            return reduce_members(member_sums(group, stats, "wg"), "sum").abs()
        if self.variant == "elementwise":
            return reduce_members(member_sums(group, stats, "wg", absolute=True), "sum")
        return reduce_members(member_sums(group, stats, "wg_sq"), "sum")


@dataclass
class Fisher(DataCriterion):
    """Optimal Brain Damage (LeCun 1990) with a Fisher diagonal: ``1/2 sum h w^2``, ``h = E[g^2]``.

    ``g`` is each calibration batch's gradient; with batch size 1 ``h`` is the empirical
    Fisher. The sum runs over all of the unit's parameters in every member.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.importance import Fisher
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
        >>> crit = Fisher(data=data, loss_fn=lambda o, b: torch.nn.functional.cross_entropy(o, b[1]))
        >>> prunekit.prune(net, torch.randn(1, 3), ratio=0.5, importance=crit).model[0].out_features
        2
    """

    NEEDS: ClassVar[tuple[str, ...]] = ("grad_sq",)
    requires_loss: ClassVar[bool] = True
    zero_unit_lowest: ClassVar[bool] = True

    def score(
        self, group: Group, tensors: dict[str, torch.Tensor], stats: CalibrationStats
    ) -> torch.Tensor:
        return 0.5 * reduce_members(member_sums(group, stats, "grad_sq", tensors), "sum")


register_importance("grad", MeanGradient)
register_importance("taylor", Taylor)
register_importance("taylor_sq", lambda: Taylor(variant="sq"))
register_importance("fisher", Fisher)
register_importance("obd", Fisher)
