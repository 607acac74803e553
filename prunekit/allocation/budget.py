"""Budget allocation: the smallest global cut whose measured cost meets a target."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..graph.dependency import Group
from .allocate import global_order
from .rules import clamp_removal, lowest

__all__ = ["BudgetReport", "search_budget", "resolve_target"]

CostFn = Callable[[dict[int, list[int]]], int]


@dataclass
class BudgetReport:
    """Where a budget search landed.

    ``achieved <= target < previous``: ``previous`` is the cost of the next smaller cut the
    search could make (one ``round_to`` step less in one group), so the cut is within one
    step of the target. ``trials`` is how many trial cuts were measured.
    """

    metric: str
    target: int
    baseline: int
    achieved: int
    previous: int
    trials: int

    @property
    def overshoot(self) -> float:
        """How far below the target the cut landed, as a fraction of the baseline."""
        return (self.target - self.achieved) / max(self.baseline, 1)


def resolve_target(metric: str, target: float, baseline: int) -> int:
    """An absolute target: floats in ``(0, 1)`` are fractions of ``baseline`` to keep."""
    if isinstance(target, bool) or not isinstance(target, (int, float)) or target <= 0:
        raise ConfigError(
            f"target_{metric}={target!r} must be a positive count, or a fraction in (0, 1) "
            "of the unpruned model's cost to keep"
        )
    if isinstance(target, float) and target < 1.0:
        return int(target * baseline)
    return int(target)


def _cut_at(
    k: int,
    order: list[tuple[int, int]],
    groups: list[Group],
    scores: Mapping[int, torch.Tensor],
    max_ratio: float,
    round_to: int,
) -> dict[int, list[int]]:
    counts = {g.id: 0 for g in groups}
    for gid, _ in order[:k]:
        counts[gid] += 1
    return {
        g.id: lowest(
            scores[g.id].float(),
            clamp_removal(g.num_units, counts[g.id], max_ratio=max_ratio, round_to=round_to),
        )
        for g in groups
    }


def search_budget(
    groups: list[Group],
    scores: Mapping[int, torch.Tensor],
    cost_fn: CostFn,
    *,
    metric: str,
    target: int,
    baseline: int,
    max_ratio: float = 1.0,
    round_to: int = 1,
) -> tuple[dict[int, list[int]], BudgetReport]:
    """Binary search on a global score threshold for the least removal with cost <= target.

    Units are ranked globally by mean-normalised score; cutting the ``k`` lowest (after caps
    and rounding) has a cost that falls as ``k`` grows, so ``log2(units)`` trial cuts find
    the smallest ``k`` that meets ``target``. ``cost_fn`` measures a candidate cut exactly.
    """
    order = global_order(groups, scores)
    memo: dict[tuple[int, ...], int] = {}

    def cost(k: int) -> tuple[dict[int, list[int]], int]:
        cut = _cut_at(k, order, groups, scores, max_ratio, round_to)
        key = tuple(len(cut[g.id]) for g in groups)
        if key not in memo:
            memo[key] = baseline if not any(key) else cost_fn(cut)
        return cut, memo[key]

    if target >= baseline:
        return {g.id: [] for g in groups}, BudgetReport(
            metric, target, baseline, baseline, baseline, 0
        )
    best, lowest_cost = cost(len(order))
    if lowest_cost > target:
        raise ConfigError(
            f"target_{metric}={target:,} cannot be met: cutting every prunable unit the caps "
            f"allow still leaves {lowest_cost:,} {metric} (of {baseline:,}); raise the target, "
            "raise max_ratio, or remove groups from ignore"
        )
    lo, hi = 0, len(order)  # cost(lo) > target >= cost(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cost(mid)[1] <= target:
            hi = mid
        else:
            lo = mid
    best, achieved = cost(hi)
    _, previous = cost(lo)
    return best, BudgetReport(metric, target, baseline, achieved, previous, len(memo))
