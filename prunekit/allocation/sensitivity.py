"""Per-group ratios from measured sensitivity curves: cut more where the metric drops less.

The arithmetic only; measuring the curves (pruning each group alone and evaluating the
model) lives in :mod:`prunekit.evaluation.sensitivity`, which sits above the pruner.

Rule ("equal tolerance"): each group is cut as far as its measured drop stays within a
tolerance ``tau``; ``tau`` is the smallest tolerance at which the groups together lose the
target number of units. A group's drop curve is the piecewise-linear interpolation of its
measured points ``(units removed, metric drop)`` through ``(0, 0)``, made non-decreasing (a
running maximum, negative drops count as 0), and never extrapolated past the largest cut
that was measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .rules import check_fraction

__all__ = ["SensitivityAllocation", "allocate_by_sensitivity", "drop_curve", "units_within"]

Curve = list[tuple[int, float]]


@dataclass
class SensitivityAllocation:
    """Where a sensitivity-based allocation landed.

    Attributes:
        target_ratio: the requested fraction of all units of the measured groups.
        tolerance: ``tau``, the largest per-group drop (on the interpolated curves) allowed.
        removed: units to remove per group key (they add up to the target exactly).
        group_ratios: ``removed / size`` per group key, ready for
            ``prunekit.prune(..., group_ratios=...)`` (``int(ratio * size)`` gives ``removed``).
        predicted_drops: each group's interpolated drop at its cut; their sum is only a rough
            (additive) forecast of the joint drop, since groups interact.
    """

    target_ratio: float
    tolerance: float
    removed: dict[str, int]
    group_ratios: dict[str, float]
    predicted_drops: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "target_ratio": self.target_ratio,
            "tolerance": self.tolerance,
            "removed": dict(self.removed),
            "group_ratios": dict(self.group_ratios),
            "predicted_drops": dict(self.predicted_drops),
        }


def drop_curve(points: Mapping[int, float]) -> Curve:
    """The non-decreasing curve through ``(0, 0)`` and the measured ``{units: drop}`` points.

    Example:
        >>> drop_curve({4: 0.2, 2: -0.1, 6: 0.1})
        [(0, 0.0), (2, 0.0), (4, 0.2), (6, 0.2)]
    """
    curve, worst = [(0, 0.0)], 0.0
    for k in sorted(points):
        if k <= 0:
            continue
        worst = max(worst, float(points[k]))
        curve.append((int(k), worst))
    return curve


def units_within(curve: Curve, tau: float, *, strict: bool = False) -> float:
    """The most units (fractional: interpolated) whose drop stays ``<= tau`` (``< tau``).

    Example:
        >>> c = drop_curve({2: 0.0, 4: 0.2})
        >>> units_within(c, 0.1), units_within(c, 0.0), units_within(c, 0.0, strict=True)
        (3.0, 2.0, 0.0)
    """
    for (k0, d0), (k1, d1) in zip(curve, curve[1:]):
        if (d1 < tau) if strict else (d1 <= tau):
            continue
        if (d0 >= tau) if strict else (d0 > tau):
            return float(k0)
        return k0 + (k1 - k0) * (tau - d0) / (d1 - d0)
    return float(curve[-1][0])


def _total(curves: dict[str, Curve], tau: float, strict: bool = False) -> float:
    return sum(units_within(c, tau, strict=strict) for c in curves.values())


def _solve_tau(curves: dict[str, Curve], target: int) -> float:
    """The smallest ``tau`` at which the curves allow ``target`` units (bisection)."""
    lo, hi = 0.0, max((c[-1][1] for c in curves.values()), default=0.0)
    if _total(curves, lo) >= target:
        return lo
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if _total(curves, mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def _round_to_total(x: dict[str, float], caps: dict[str, int], target: int) -> dict[str, int]:
    """Integers near ``x`` adding up to ``target``: floors, then the largest remainders."""
    out = {k: min(caps[k], math.floor(v + 1e-9)) for k, v in x.items()}
    order = sorted(x, key=lambda k: (-(x[k] - out[k]), k))
    missing = target - sum(out.values())
    for k in order:
        if missing <= 0:
            break
        if out[k] < caps[k]:
            out[k] += 1
            missing -= 1
    return out


def allocate_by_sensitivity(
    drops: Mapping[str, Mapping[int, float]],
    sizes: Mapping[str, int],
    target_ratio: float,
) -> SensitivityAllocation:
    """Per-group cuts that remove ``target_ratio`` of all units at the least tolerated drop.

    Args:
        drops: per group key, ``{units removed: metric drop}`` (drop = unpruned metric minus
            pruned metric, higher is worse), measured with that group pruned alone.
        sizes: units per group key (every key of ``drops``).
        target_ratio: fraction of the groups' units to remove in total, in ``[0, 1)``.

    Returns:
        A :class:`SensitivityAllocation`: ``removed`` sums to ``floor(target_ratio * units)``.

    Raises:
        ConfigError: the target needs more units than the largest measured cuts hold.

    Example:
        Group ``a`` loses nothing up to 4 of its 10 units, ``b`` loses from the start:

        >>> a = {2: 0.0, 4: 0.0, 6: 0.1, 8: 0.5}
        >>> b = {2: 0.1, 4: 0.2, 6: 0.4, 8: 0.8}
        >>> alloc = allocate_by_sensitivity({"a": a, "b": b}, {"a": 10, "b": 10}, 0.4)
        >>> alloc.removed, round(alloc.tolerance, 6), alloc.group_ratios
        ({'a': 6, 'b': 2}, 0.1, {'a': 0.6, 'b': 0.2})
    """
    ratio = check_fraction("target_ratio", target_ratio)
    missing = [k for k in drops if k not in sizes]
    if missing:
        raise ConfigError(f"sizes has no entry for groups {missing[:5]}; give every group's units")
    curves = {k: drop_curve(pts) for k, pts in drops.items()}
    caps = {k: c[-1][0] for k, c in curves.items()}
    target = int(ratio * sum(sizes[k] for k in drops) + 1e-9)
    if target > sum(caps.values()):
        most = sum(caps.values()) / max(sum(sizes[k] for k in drops), 1)
        raise ConfigError(
            f"target_ratio={target_ratio!r} needs {target} units, but the measured cuts reach "
            f"only {sum(caps.values())} (ratio {most:.3f}); lower the target or measure larger "
            "ratios in the sensitivity analysis"
        )
    tau = _solve_tau(curves, target)
    low = {k: units_within(c, tau, strict=True) for k, c in curves.items()}
    high = {k: units_within(c, tau) for k, c in curves.items()}
    span = sum(high.values()) - sum(low.values())
    lam = (target - sum(low.values())) / span if span > 1e-12 else 0.0
    lam = min(max(lam, 0.0), 1.0)
    x = {k: low[k] + lam * (high[k] - low[k]) for k in curves}
    removed = _round_to_total(x, caps, target)
    return SensitivityAllocation(
        target_ratio=ratio,
        tolerance=tau,
        removed=removed,
        group_ratios={k: removed[k] / sizes[k] for k in removed},
        predicted_drops={k: _drop_at(curves[k], removed[k]) for k in removed},
    )


def _drop_at(curve: Curve, units: float) -> float:
    for (k0, d0), (k1, d1) in zip(curve, curve[1:]):
        if units <= k1:
            return d0 + (d1 - d0) * (units - k0) / (k1 - k0)
    return curve[-1][1]
