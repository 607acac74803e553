"""Budget allocation: the smallest global cut whose measured cost meets a target."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..graph.dependency import Group
from ..spec import check_target
from .allocate import global_order
from .rules import clamp_removal, lowest

__all__ = ["BudgetReport", "check_target", "search_budget", "resolve_target"]

CostFn = Callable[[dict[int, list[int]]], int]

REFILL_SLACK = 0.005
"""Refill only when the ranked cut lands more than this fraction of the baseline below the
target (rounding or caps made the last step coarse); closer than that, it is not worth the
extra trial cuts."""


@dataclass
class BudgetReport:
    """Where a budget search landed.

    ``achieved <= target < previous``: ``previous`` is the cost of the next smaller cut in
    the global order (one unit, or one ``round_to`` step, less), so the ranked cut is within
    one step of the target. ``refilled`` is how many ``round_to`` steps were then given back
    (most important removed units first) because the cut still fit the target without them;
    after the refill no single step can be given back. ``trials`` is how many trial cuts
    were measured.
    """

    metric: str
    target: int
    baseline: int
    achieved: int
    previous: int
    trials: int
    refilled: int = 0

    @property
    def overshoot(self) -> float:
        """How far below the target the cut landed, as a fraction of the baseline."""
        return (self.target - self.achieved) / max(self.baseline, 1)


def resolve_target(metric: str, target: float, baseline: int) -> int:
    """An absolute target: floats in ``(0, 1)`` are fractions of ``baseline`` to keep."""
    check_target(metric, target)
    if isinstance(target, float) and target < 1.0:
        return int(target * baseline)
    return int(target)


def _counts_at(k: int, order: list[tuple[int, int]], groups: list[Group], max_ratio: float,
               round_to: int) -> dict[int, int]:  # fmt: skip
    counts = {g.id: 0 for g in groups}
    for gid, _ in order[:k]:
        counts[gid] += 1
    return {
        g.id: clamp_removal(g.num_units, counts[g.id], max_ratio=max_ratio, round_to=round_to)
        for g in groups
    }


def _give_back(
    counts: dict[int, int],
    groups: list[Group],
    scores: Mapping[int, torch.Tensor],
    round_to: int,
) -> list[tuple[float, int, int]]:
    """Candidate refills ``(priority, group id, new count)``: each group's next ``round_to``
    removed units, by their mean-normalised score (the most important first)."""
    out = []
    for g in groups:
        n = counts[g.id]
        new = clamp_removal(g.num_units, n - round_to, round_to=round_to) if n else n
        if new >= n:
            continue
        s = scores[g.id].float()
        ranked = torch.argsort(s, stable=True)[:n]
        back = s[ranked[new:n]] / (s.abs().mean() + 1e-12)
        out.append((float(back.mean()), g.id, new))
    return sorted(out, key=lambda c: -c[0])


def _refill(
    counts: dict[int, int],
    cost: Callable[[dict[int, int]], int],
    groups: list[Group],
    scores: Mapping[int, torch.Tensor],
    *,
    target: int,
    round_to: int,
    max_trials: int,
) -> tuple[dict[int, int], int]:
    """Give back removed steps, most important first, while the cost stays within ``target``."""
    refilled, trials = 0, 0
    while trials < max_trials:
        for _, gid, new in _give_back(counts, groups, scores, round_to):
            trials += 1
            trial = {**counts, gid: new}
            if cost(trial) <= target:
                counts, refilled = trial, refilled + 1
                break
            if trials >= max_trials:
                break
        else:
            break  # no step fits any more
    return counts, refilled


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
    refill: bool = True,
) -> tuple[dict[int, list[int]], BudgetReport]:
    """Binary search on a global score threshold for the least removal with cost <= target.

    Units are ranked globally by mean-normalised score; cutting the ``k`` lowest (after caps
    and rounding) has a cost that falls as ``k`` grows, so ``log2(units)`` trial cuts find
    the smallest ``k`` that meets ``target``. ``cost_fn`` measures a candidate cut exactly.
    Rounding and caps make that cut land below the target by up to one group's step; with
    ``refill`` (when the cut lands more than :data:`REFILL_SLACK` of the baseline below the
    target) the removed steps are then given back, most important first, while the cut
    still meets the target (at most ``2 * groups + 8`` more trial cuts).
    """
    order = global_order(groups, scores)
    memo: dict[tuple[int, ...], int] = {}

    def cut_of(counts: dict[int, int]) -> dict[int, list[int]]:
        return {g.id: lowest(scores[g.id].float(), counts[g.id]) for g in groups}

    def cost(counts: dict[int, int]) -> int:
        key = tuple(counts[g.id] for g in groups)
        if key not in memo:
            memo[key] = baseline if not any(key) else cost_fn(cut_of(counts))
        return memo[key]

    def at(k: int) -> dict[int, int]:
        return _counts_at(k, order, groups, max_ratio, round_to)

    if target >= baseline:
        return {g.id: [] for g in groups}, BudgetReport(
            metric, target, baseline, baseline, baseline, 0
        )
    lowest_cost = cost(at(len(order)))
    if lowest_cost > target:
        raise ConfigError(
            f"target_{metric}={target:,} cannot be met: cutting every prunable unit the caps "
            f"allow still leaves {lowest_cost:,} {metric} (of {baseline:,}); raise the target, "
            "raise max_ratio, remove groups from ignore, or pass streams='prune' (model-wide "
            "residual streams are left out of a cut by default)"
        )
    lo, hi = 0, len(order)  # cost(lo) > target >= cost(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cost(at(mid)) <= target:
            hi = mid
        else:
            lo = mid
    counts, refilled = at(hi), 0
    if refill and target - cost(counts) > REFILL_SLACK * baseline:
        counts, refilled = _refill(counts, cost, groups, scores, target=target,
                                   round_to=round_to, max_trials=2 * len(groups) + 8)  # fmt: skip
    report = BudgetReport(metric, target, baseline, cost(counts), cost(at(lo)), len(memo), refilled)
    return cut_of(counts), report
