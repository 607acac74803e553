"""The criterion protocol and what every criterion shares: normalisation, reduction, ranks.

A criterion maps a group to one score per unit (higher = keep). Its protocol,
:class:`Importance`, has two methods: ``prepare(model, graph)``, called once on the
analysed model before any group is scored (data-driven criteria collect their calibration
statistics there; the default does nothing), and ``__call__(group, tensors)``.
:class:`Criterion` is the base class that supplies the no-op ``prepare`` and declares the
criterion's traits, which the conformance battery (:mod:`prunekit.conformance`) checks:

======================  ==============================================================
``requires_data``       ``prepare`` needs calibration batches (``data=``,
                        ``calibration=`` or ``stats=``) and raises
                        :class:`~prunekit.errors.ConfigError` without them
``requires_loss``       the calibration pass also needs ``loss_fn`` (gradients, losses)
``zero_unit_lowest``    magnitude-like: a unit whose every member slice is zero scores
                        lowest, or ties-lowest (on nets whose nonlinearities map 0 to 0)
======================  ==============================================================

The built-in traits:

==============================================  ==========  ==========  ===============
criterion                                       data        loss        zero is lowest
==============================================  ==========  ==========  ===============
``l1``, ``l2`` (:class:`Magnitude`)             no          no          yes
``lamp``, ``bn_scale``                          no          no          yes
``fpgm``, ``random``                            no          no          no
``grad``                                        yes         yes         no
``taylor``, ``taylor_sq``, ``fisher``/``obd``   yes         yes         yes
``activation``, ``apoz``, ``wanda``             yes         no          yes
``loss`` (:class:`LossContribution`)            yes         yes         no
``obs``, ``reconstruction`` (set-aware)         yes         no          no
==============================================  ==========  ==========  ===============
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..graph.dependency import DependencyGraph, Group

__all__ = [
    "Criterion",
    "Importance",
    "NORMALIZATIONS",
    "REDUCTIONS",
    "check_choice",
    "normalize_scores",
    "reduce_members",
    "average_ranks",
    "spearman",
]


@runtime_checkable
class Importance(Protocol):
    """A criterion: ``prepare`` once per analysed model, then group -> one score per unit."""

    def prepare(self, model: nn.Module, graph: DependencyGraph) -> None:
        """Get ready to score the groups of ``graph``, which describes ``model``."""

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """One finite score per unit of ``group`` (``[group.num_units]``), higher = keep."""
        ...


class Criterion:
    """Base class of criteria: the default no-op :meth:`prepare` and the declared traits.

    Subclasses implement ``__call__(group, tensors)`` and set the traits that hold (see the
    module docstring); :func:`prunekit.conformance.check_criterion` checks them.

    Example:
        >>> import torch, prunekit
        >>> class Width(Criterion):
        ...     zero_unit_lowest = False
        ...     def __call__(self, group, tensors):
        ...         return torch.arange(group.num_units, dtype=torch.float32)
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> g = prunekit.analyze(net, torch.randn(1, 3))
        >>> crit = Width()
        >>> crit.prepare(net, g)  # the default: nothing to do
        >>> crit(g.groups[0], g.tensors).tolist()
        [0.0, 1.0, 2.0, 3.0]
    """

    requires_data: ClassVar[bool] = False
    requires_loss: ClassVar[bool] = False
    zero_unit_lowest: ClassVar[bool] = False

    def prepare(self, model: nn.Module, graph: DependencyGraph) -> None:
        """Nothing to prepare (data-free criteria); data-driven ones collect stats here."""
        return None

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(group, tensors)")


NORMALIZATIONS = ("none", "mean", "max", "sum", "standardise")
REDUCTIONS = ("sum", "mean", "max")
_EPS = 1e-12


def check_choice(owner: str, arg: str, value: str, valid: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` naming ``value`` and the valid choices when it is not one."""
    if value not in valid:
        raise ConfigError(f"{owner} {arg}={value!r} is unknown; use one of {valid}")


def normalize_scores(scores: torch.Tensor, method: str = "none") -> torch.Tensor:
    """Normalise one group's scores so that groups can be ranked together.

    ``mean``/``max``/``sum`` divide by the mean/max/sum of ``|scores|``; ``standardise``
    subtracts the mean and divides by the (population) standard deviation.

    Example:
        >>> import torch
        >>> [round(v, 4) for v in normalize_scores(torch.tensor([1.0, 3.0]), "max").tolist()]
        [0.3333, 1.0]
        >>> normalize_scores(torch.tensor([1.0, 3.0]), "standardise").tolist()
        [-1.0, 1.0]
    """
    if method == "standardize":
        method = "standardise"
    check_choice("normalize", "method", method, NORMALIZATIONS)
    s = scores.float()
    if method == "none" or s.numel() == 0:
        return s
    if method == "standardise":
        return (s - s.mean()) / (s.std(unbiased=False) + _EPS)
    mag = s.abs()
    denom = {"mean": mag.mean(), "max": mag.max(), "sum": mag.sum()}[method]
    return s / (denom + _EPS)


def reduce_members(per_member: list[torch.Tensor], reduction: str) -> torch.Tensor:
    """Combine per-member unit scores (each ``[num_units]``) into one score per unit.

    Example:
        >>> import torch
        >>> reduce_members([torch.tensor([1.0, 2.0]), torch.tensor([3.0, 0.0])], "sum").tolist()
        [4.0, 2.0]
    """
    check_choice("member", "reduction", reduction, REDUCTIONS)
    stacked = torch.stack([s.float() for s in per_member])
    if reduction == "sum":
        return stacked.sum(0)
    if reduction == "max":
        return stacked.amax(0)
    return stacked.mean(0)


def average_ranks(scores: torch.Tensor) -> torch.Tensor:
    """Ranks ``0..n-1`` of ``scores`` (ties share their average rank).

    Example:
        >>> import torch
        >>> average_ranks(torch.tensor([10.0, 5.0, 5.0, 1.0])).tolist()
        [3.0, 1.5, 1.5, 0.0]
    """
    flat = scores.detach().float().reshape(-1)
    _, inverse, counts = torch.unique(flat, sorted=True, return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts
    avg = first.float() + (counts.float() - 1.0) / 2.0
    out: torch.Tensor = avg[inverse]
    return out


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two score vectors (Pearson correlation of their ranks).

    Example:
        >>> import torch
        >>> round(spearman(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 15.0])), 6)
        0.5
    """
    if a.numel() != b.numel() or a.numel() < 2:
        raise ConfigError(
            f"spearman needs two score vectors of the same length >= 2, got {a.numel()} "
            f"and {b.numel()}"
        )
    ra, rb = average_ranks(a).double(), average_ranks(b).double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / denom if denom > 0 else 0.0
