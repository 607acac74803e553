"""Bisection on the pruning ratio: the largest ratio that keeps the metric, the smallest
ratio that meets a budget. Both assume monotonicity and probe ``upper`` first.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["largest_passing", "smallest_fitting"]


def largest_passing(passes: Callable[[float], bool], upper: float, steps: int) -> float | None:
    """The largest ratio in ``(0, upper]`` for which ``passes`` holds, to ``upper / 2**steps``.

    ``upper`` is tried first (one call when it passes); then ``steps`` halvings of
    ``[0, upper]``, taking ratio 0 (the unpruned model) as passing. ``None`` when no probed
    ratio passed.

    Example:
        >>> tried = []
        >>> def ok(r):
        ...     tried.append(r)
        ...     return r <= 0.3
        >>> largest_passing(ok, 0.5, 3), tried
        (0.25, [0.5, 0.25, 0.375, 0.3125])
    """
    if passes(upper):
        return upper
    lo, hi, found = 0.0, upper, None
    for _ in range(steps):
        mid = (lo + hi) / 2
        if passes(mid):
            lo, found = mid, mid
        else:
            hi = mid
    return found


def smallest_fitting(
    fits: Callable[[float], bool], upper: float, steps: int, *, zero_fits: bool
) -> float | None:
    """The smallest ratio in ``[0, upper]`` for which ``fits`` holds, to ``upper / 2**steps``.

    ``zero_fits`` says whether the unpruned model already fits (then 0 is returned without
    a call). Otherwise ``upper`` is tried first (``None`` if even it does not fit), then
    ``steps`` halvings; the answer always fits.

    Example:
        >>> smallest_fitting(lambda r: r >= 0.3, 1.0, 3, zero_fits=False)
        0.375
        >>> smallest_fitting(lambda r: r >= 0.3, 1.0, 5, zero_fits=False)
        0.3125
        >>> smallest_fitting(lambda r: False, 0.8, 3, zero_fits=False) is None
        True
    """
    if zero_fits:
        return 0.0
    if not fits(upper):
        return None
    lo, hi = 0.0, upper
    for _ in range(steps):
        mid = (lo + hi) / 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi
