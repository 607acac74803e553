"""Shared pieces of every criterion: per-group normalisation, member reduction, ranks."""

from __future__ import annotations

import torch

from ..errors import ConfigError

__all__ = [
    "NORMALIZATIONS",
    "REDUCTIONS",
    "check_choice",
    "normalize_scores",
    "reduce_members",
    "average_ranks",
    "spearman",
]

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
