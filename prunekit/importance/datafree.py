"""Data-free criteria beyond plain magnitude: FPGM, LAMP and BN scale (Network Slimming)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..graph.dependency import Group, Member
from ..surgery import role_of
from .base import (
    NORMALIZATIONS,
    REDUCTIONS,
    Criterion,
    check_choice,
    normalize_scores,
    reduce_members,
)
from .datadriven import uniform_fallback
from .magnitude import Magnitude, unit_slices
from .registry import register_importance

__all__ = ["FPGM", "LAMP", "BNScale", "is_norm_weight"]


def is_norm_weight(module: nn.Module | None, tensor: str) -> bool:
    """Is ``module.<tensor>`` the per-channel scale of a batch/instance norm layer (the role
    ``"norm_scale"`` its surgery handler gives it)?

    Example:
        >>> import torch
        >>> is_norm_weight(torch.nn.BatchNorm2d(3), "weight"), is_norm_weight(None, "weight")
        (True, False)
    """
    return module is not None and role_of(module, tensor) == "norm_scale"


@dataclass
class FPGM(Criterion):
    """Filter pruning via geometric median (He et al. 2019).

    For every parameter member whose unit slices have more than one element (filters, rows,
    columns), each unit scores the sum of Euclidean distances from its slice to all other
    units' slices: the slices nearest the geometric median (smallest sum) are the most
    replaceable and go first. Members combine with ``reduction``.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.importance import FPGM
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> g = prunekit.analyze(net, torch.randn(1, 3))
        >>> FPGM()(g.groups[0], g.tensors).shape
        torch.Size([4])
    """

    reduction: str = "mean"
    normalize: str = "none"

    def __post_init__(self) -> None:
        check_choice("FPGM", "reduction", self.reduction, REDUCTIONS)
        check_choice("FPGM", "normalize", self.normalize, NORMALIZATIONS)

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        slices = [unit_slices(m, tensors[m.name]).float() for m in group.members if m.is_param]
        wide = [s for s in slices if s.shape[1] > 1] or slices
        per = [torch.cdist(s[None], s[None])[0].sum(1) for s in wide]
        return normalize_scores(reduce_members(per, self.reduction), self.normalize)


@dataclass
class LAMP(Criterion):
    """Layer-adaptive magnitude-based pruning score (Lee et al. 2021), per unit.

    With ``n_u = ||W_u||_2^2`` in one member, ``score_u = n_u / sum_{v: n_v >= n_u} n_v``
    (units sorted by ``n``; ties broken by index). The largest unit scores 1. Members
    (parameters only) combine with ``reduction``.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.importance import LAMP
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> g = prunekit.analyze(net, torch.randn(1, 3))
        >>> LAMP()(g.groups[0], g.tensors).shape
        torch.Size([4])
    """

    reduction: str = "mean"
    normalize: str = "none"
    zero_unit_lowest: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_choice("LAMP", "reduction", self.reduction, REDUCTIONS)
        check_choice("LAMP", "normalize", self.normalize, NORMALIZATIONS)

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        per = []
        for m in group.members:
            if not m.is_param:
                continue
            sq = unit_slices(m, tensors[m.name]).double().pow(2).sum(1)
            order = torch.argsort(sq, stable=True)
            tail = torch.flip(torch.cumsum(torch.flip(sq[order], [0]), 0), [0])
            score = torch.empty_like(sq)
            score[order] = sq[order] / tail.clamp_min(1e-30)
            per.append(score.float())
        return normalize_scores(reduce_members(per, self.reduction), self.normalize)


@dataclass
class BNScale(Criterion):
    """``|gamma_u|`` of the group's batch-norm scales (Network Slimming, Liu et al. 2017).

    The scales are the members with role ``"norm_scale"`` (set by the surgery handlers: the
    weights of batch and instance norms). Several norm layers in one group (a residual
    stream) are averaged. Groups with no such member use ``fallback``: ``"l2"``
    (:class:`Magnitude`) or ``"uniform"`` (equal scores, with a warning). Members built by
    hand carry no role: pass the model at :meth:`prepare` (``prunekit.prune`` does) to ask
    their handlers.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.importance import BNScale
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
        ...                           torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
        >>> with torch.no_grad():
        ...     _ = net[1].weight.copy_(torch.tensor([0.5, -2.0, 1.0, 0.1]))
        >>> crit = BNScale()
        >>> g = prunekit.analyze(net, torch.randn(1, 1, 8, 8))
        >>> crit.prepare(net, g)
        >>> crit(g.groups[0], g.tensors).tolist()
        [0.5, 2.0, 1.0, 0.10000000149011612]
    """

    fallback: str = "l2"
    normalize: str = "none"
    zero_unit_lowest: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_choice("BNScale", "fallback", self.fallback, ("l2", "uniform"))
        check_choice("BNScale", "normalize", self.normalize, NORMALIZATIONS)
        self.modules_: dict[str, nn.Module] = {}

    def prepare(self, model: nn.Module, graph: object) -> None:
        """Remember the model's modules, for the roles of members built without one."""
        self.modules_ = dict(model.named_modules())

    def _is_scale(self, m: Member) -> bool:
        if m.role:
            return m.role == "norm_scale"
        return is_norm_weight(self.modules_.get(m.module), m.tensor)

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        per = [
            unit_slices(m, tensors[m.name]).float().abs().mean(1)
            for m in group.members
            if m.is_param and self._is_scale(m)
        ]
        if per:
            raw = reduce_members(per, "mean")
        elif self.fallback == "l2":
            raw = Magnitude(p=2)(group, tensors)
        else:
            raw = uniform_fallback("BNScale", group, "batch-norm scale")
        return normalize_scores(raw, self.normalize)


register_importance("fpgm", FPGM)
register_importance("lamp", LAMP)
register_importance("bn_scale", BNScale)
