"""Bring a ratio-driven cut to a MACs budget: bisect the ratio, report what was realised.

Tools whose knob is a per-layer channel ratio (Torch-Pruning, prunekit's local scope) miss a
MACs target by construction; bisecting the ratio to the smallest one whose realised MACs is
at or below the target makes every method land at (nearly) the same realised MACs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

__all__ = ["Matched", "bisect_ratio", "scan_ratio"]


@dataclass
class Matched:
    """The cut at the chosen ratio and how it was found."""

    model: nn.Module
    ratio: float
    macs: int
    trials: int


def bisect_ratio(
    cut: Callable[[float], nn.Module],
    macs_of: Callable[[nn.Module], int],
    target: float,
    *,
    hi: float = 0.95,
    iters: int = 6,
) -> Matched:
    """Smallest ratio in ``[0, hi]`` whose cut has ``macs_of(cut(ratio)) <= target``.

    Assumes MACs fall as the ratio grows (true for channel pruning). If even ``hi`` misses the
    target the cut at ``hi`` is returned (its realised MACs tell by how much).

    Example:
        >>> import torch
        >>> m = bisect_ratio(lambda r: torch.nn.Linear(4, max(1, round(10 * (1 - r)))),
        ...                  lambda mod: mod.out_features * 4, target=20)
        >>> m.macs, m.model.out_features, 0.4 < m.ratio < 0.5
        (20, 5, True)
    """
    lo, best_ratio = 0.0, hi
    best = cut(hi)
    best_macs = macs_of(best)
    trials = 1
    if best_macs > target:
        return Matched(best, hi, best_macs, trials)
    for _ in range(iters):
        mid = (lo + best_ratio) / 2
        model = cut(mid)
        macs = macs_of(model)
        trials += 1
        if macs <= target:
            best, best_ratio, best_macs = model, mid, macs
        else:
            lo = mid
    return Matched(best, best_ratio, best_macs, trials)


def scan_ratio(
    cut: Callable[[float], nn.Module],
    macs_of: Callable[[nn.Module], int],
    target: float,
    *,
    hi: float = 0.95,
    step: float = 0.025,
) -> Matched:
    """The ratio on a grid ``step, 2 step, ... <= hi`` whose cut meets ``target`` with the
    most MACs left (the least overshoot), for cuts whose MACs are *not* monotone in the
    ratio (Torch-Pruning with ``round_to``); if none meets it, the cut with the fewest MACs.

    Example:
        >>> import torch
        >>> widths = {0.25: 3, 0.5: 6, 0.75: 2}  # not monotone: 0.5 keeps more than 0.25
        >>> m = scan_ratio(lambda r: torch.nn.Linear(4, widths.get(r, 8)),
        ...                lambda mod: mod.out_features * 4, target=13, hi=0.75, step=0.25)
        >>> m.ratio, m.macs, m.trials
        (0.25, 12, 3)
    """
    ratios = [round(step * i, 6) for i in range(1, int(hi / step + 1e-9) + 1)]
    found = [(r, model, macs_of(model)) for r in ratios for model in [cut(r)]]
    meeting = [f for f in found if f[2] <= target]
    r, model, macs = max(meeting, key=lambda f: f[2]) if meeting else min(found, key=lambda f: f[2])
    return Matched(model, r, macs, len(found))
