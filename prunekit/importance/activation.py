"""Activation criteria: mean |a|, APoZ, and Wanda-style |W|·||X||, from input hooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..graph.dependency import Group, Member
from .base import REDUCTIONS, check_choice, reduce_members
from .calibration import input_dim, input_weight
from .datadriven import DataCriterion, uniform_fallback
from .magnitude import unit_slices
from .registry import register_importance
from .stats import CalibrationStats

__all__ = ["ActivationMean", "APoZ", "Wanda"]


def _consumer_values(
    crit: DataCriterion, group: Group, stats: CalibrationStats, stat: str
) -> list[torch.Tensor]:
    """Per consumer member (a weight whose input features are the group's units): the mean
    of ``stat`` over each unit's input positions."""
    out = []
    for m in group.members:
        mod = crit.modules_.get(m.module)
        if not m.is_param or mod is None or m.tensor != input_weight(mod):
            continue
        w = mod._parameters.get(m.tensor)
        if w is None or input_dim(mod, w, m.tensor) != m.dim or not stats.has(stat, m.module):
            continue
        per_pos = stats.mean(stat, m.module)
        idx = torch.as_tensor(m.indices, dtype=torch.long)
        out.append(per_pos[idx].mean(1))
    return out


@dataclass
class ActivationMean(DataCriterion):
    """Mean ``|a_u|`` of the unit's activation where the next layers read it.

    Measured on the inputs of the group's consumer layers (after the nonlinearity); with
    several consumers (a residual stream) their means are averaged. Needs only ``data``;
    ``loss_fn`` is optional. Groups no consumer input can be read for get equal scores, with
    a warning.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.importance import ActivationMean
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> crit = ActivationMean(data=[torch.randn(8, 3)])
        >>> prunekit.prune(net, torch.randn(1, 3), ratio=0.5, importance=crit).model[0].out_features
        2
    """

    NEEDS: ClassVar[tuple[str, ...]] = ("act_abs",)
    zero_unit_lowest: ClassVar[bool] = True

    def score(
        self, group: Group, tensors: dict[str, torch.Tensor], stats: CalibrationStats
    ) -> torch.Tensor:
        per = _consumer_values(self, group, stats, "act_abs")
        if not per:
            return uniform_fallback("ActivationMean", group, "readable consumer input")
        return reduce_members(per, "mean")


@dataclass
class APoZ(DataCriterion):
    """``1 - APoZ``: the fraction of non-zero activations (Hu et al. 2016), higher = keep.

    APoZ (average percentage of zeros after ReLU) is read on the consumer layers' inputs,
    as for :class:`ActivationMean`.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.importance import APoZ
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> crit = APoZ(data=[torch.randn(8, 3)])
        >>> prunekit.prune(net, torch.randn(1, 3), ratio=0.5, importance=crit).model[0].out_features
        2
    """

    NEEDS: ClassVar[tuple[str, ...]] = ("act_zero",)
    zero_unit_lowest: ClassVar[bool] = True

    def score(
        self, group: Group, tensors: dict[str, torch.Tensor], stats: CalibrationStats
    ) -> torch.Tensor:
        per = _consumer_values(self, group, stats, "act_zero")
        if not per:
            return uniform_fallback("APoZ", group, "readable consumer input")
        return 1.0 - reduce_members(per, "mean")


@dataclass
class Wanda(DataCriterion):
    """Wanda-style (Sun et al. 2023) ``|W_ij| * ||X_j||_2`` summed over each unit's slice.

    ``X_j`` is input feature j of the layer owning ``W`` over every calibration row. Every
    weight member contributes: a producer row sums ``|W_uj| ||X_j||`` over its inputs, a
    consumer column ``sum_i |W_iu| ||X_u||``. Members combine with ``reduction``.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.importance import Wanda
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> crit = Wanda(data=[torch.randn(8, 3)])
        >>> prunekit.prune(net, torch.randn(1, 3), ratio=0.5, importance=crit).model[0].out_features
        2
    """

    reduction: str = "sum"
    NEEDS: ClassVar[tuple[str, ...]] = ("act_sq",)
    zero_unit_lowest: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_choice("Wanda", "reduction", self.reduction, REDUCTIONS)
        super().__post_init__()

    def _member(
        self, m: Member, tensors: dict[str, torch.Tensor], stats: CalibrationStats
    ) -> torch.Tensor | None:
        mod = self.modules_.get(m.module)
        w = tensors.get(m.name)
        if mod is None or w is None or w.dim() < 2 or m.tensor != input_weight(mod):
            return None
        dim = input_dim(mod, w, m.tensor)
        if dim is None or not stats.has("act_sq", m.module):
            return None
        xnorm = stats.sums[f"act_sq/{m.module}"].float().sqrt()
        shape = [1] * w.dim()
        shape[dim] = -1
        elem = w.detach().float().abs() * xnorm.reshape(shape)
        return unit_slices(m, elem).sum(1)

    def score(
        self, group: Group, tensors: dict[str, torch.Tensor], stats: CalibrationStats
    ) -> torch.Tensor:
        per = [s for m in group.members if (s := self._member(m, tensors, stats)) is not None]
        if not per:
            return uniform_fallback("Wanda", group, "weight member with measured inputs")
        return reduce_members(per, self.reduction)


register_importance("activation", ActivationMean)
register_importance("apoz", APoZ)
register_importance("wanda", Wanda)
