"""How many units to cut where: local (same fraction per group) or global ranking."""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..graph.dependency import Group
from ..spec import SCOPES

__all__ = ["select_units", "SCOPES"]


def _keep_count(n: int, n_remove: int, round_to: int) -> int:
    keep = max(1, n - n_remove)
    if round_to > 1:
        keep = min(n, math.ceil(keep / round_to) * round_to)
    return keep


def _lowest(scores: torch.Tensor, count: int) -> list[int]:
    if count <= 0:
        return []
    order = torch.argsort(scores, stable=True)
    return sorted(order[:count].tolist())


def select_units(
    groups: list[Group],
    scores: dict[int, torch.Tensor],
    *,
    ratio: float,
    scope: str = "local",
    round_to: int = 1,
) -> dict[int, list[int]]:
    """Unit indices to remove per group id (lowest scores first).

    ``local`` removes ``floor(ratio * n)`` units of every group; ``global`` normalises each
    group's scores by their mean and removes the ``ratio`` lowest-scoring units across all
    groups. Every group keeps at least one unit, and its kept width is rounded up to a
    multiple of ``round_to``.
    """
    if scope not in SCOPES:
        raise ConfigError(f"scope={scope!r} is unknown; use one of {SCOPES}")
    out: dict[int, list[int]] = {}
    if scope == "local":
        for g in groups:
            n = g.num_units
            keep = _keep_count(n, int(ratio * n + 1e-9), round_to)
            out[g.id] = _lowest(scores[g.id], n - keep)
        return out
    normed = {g.id: scores[g.id] / (scores[g.id].abs().mean() + 1e-12) for g in groups}
    everything = torch.cat([normed[g.id] for g in groups]) if groups else torch.zeros(0)
    k = int(ratio * everything.numel() + 1e-9)
    owner = torch.cat([torch.full((g.num_units,), i) for i, g in enumerate(groups)])
    lowest = torch.argsort(everything, stable=True)[:k]  # ties broken by position: exactly k
    counts = torch.bincount(owner[lowest], minlength=len(groups)).tolist()
    for i, g in enumerate(groups):
        keep = _keep_count(g.num_units, counts[i], round_to)
        out[g.id] = _lowest(normed[g.id], g.num_units - keep)
    return out
