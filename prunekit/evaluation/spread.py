"""Variance of a metric across seeds or folds, and stratified k-fold splits.

A single number hides how much a result moves with the seed or the data split; report
``mean ± std`` over several runs instead. The standard deviation here is the *sample* one
(divisor ``n - 1``), the unbiased estimate from a handful of runs; it is 0 for one run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from prunekit.errors import ConfigError

__all__ = ["Spread", "kfold_indices", "metric_spread", "metric_spreads"]


@dataclass(frozen=True)
class Spread:
    """Summary of one metric over ``n`` runs.

    Example:
        >>> s = metric_spread([0.9, 0.8, 1.0])
        >>> round(s.mean, 6), round(s.std, 6), s.min, s.max, s.n
        (0.9, 0.1, 0.8, 1.0, 3)
        >>> str(s)
        '0.9000 ± 0.1000 (n=3)'
    """

    mean: float
    std: float
    min: float
    max: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict``."""
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f} (n={self.n})"


def metric_spread(values: Iterable[float]) -> Spread:
    """Mean, sample standard deviation, min, max and count of ``values``.

    Raises:
        ConfigError: If ``values`` is empty or holds a non-finite number.

    Example:
        >>> metric_spread([2.0, 4.0])  # std = sqrt(((2-3)^2 + (4-3)^2) / (2-1))
        Spread(mean=3.0, std=1.4142135623730951, min=2.0, max=4.0, n=2)
    """
    vals = [float(v) for v in values]
    if not vals:
        raise ConfigError("metric_spread got no values; pass one metric value per seed or fold")
    bad = [v for v in vals if not math.isfinite(v)]
    if bad:
        raise ConfigError(f"metric_spread got non-finite values {bad[:3]}; drop the failed runs")
    arr = np.asarray(vals, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return Spread(float(arr.mean()), std, float(arr.min()), float(arr.max()), int(arr.size))


def metric_spreads(runs: Sequence[Mapping[str, float]]) -> dict[str, Spread]:
    """:func:`metric_spread` of every metric over runs given as ``{metric: value}`` dicts.

    Only metrics present in every run are summarised.

    Example:
        >>> spreads = metric_spreads([{"acc": 0.9, "f1": 0.8}, {"acc": 0.7, "f1": 0.6}])
        >>> {k: round(v.mean, 6) for k, v in spreads.items()}
        {'acc': 0.8, 'f1': 0.7}
    """
    if not runs:
        raise ConfigError("metric_spreads got no runs; pass one {metric: value} dict per run")
    common = [k for k in runs[0] if all(k in run for run in runs)]
    return {k: metric_spread(run[k] for run in runs) for k in common}


def kfold_indices(
    n: int, k: int, *, seed: int = 0, labels: Sequence[int] | np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split ``range(n)`` into ``k`` folds; with ``labels``, stratified by class.

    Indices are shuffled with ``numpy.random.default_rng(seed)``. Without labels, fold sizes
    differ by at most one. With labels, each class's shuffled indices are dealt round-robin to
    the folds (continuing across classes), so every fold holds each class's share to within
    one sample and fold sizes still differ by at most one.

    Args:
        n: Number of samples.
        k: Number of folds, ``2 <= k <= n``.
        seed: Seed of the shuffle.
        labels: Class of every sample (length ``n``) for stratified folds.

    Returns:
        ``k`` pairs ``(train_indices, val_indices)``, sorted int64 arrays; the validation
        parts partition ``range(n)``.

    Example:
        >>> folds = kfold_indices(6, 3, seed=0, labels=[0, 0, 0, 1, 1, 1])
        >>> [len(val) for _, val in folds], sorted(int(i) for _, v in folds for i in v)
        ([2, 2, 2], [0, 1, 2, 3, 4, 5])
        >>> all(sorted(int(i) // 3 for i in val) == [0, 1] for _, val in folds)  # one per class
        True
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n={n!r} must be a positive int (the number of samples)")
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= n:
        raise ConfigError(f"k={k!r} must be an int in [2, n={n}] (e.g. 5 folds)")
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(n)
    else:
        order = _stratified_order(np.asarray(labels), n, rng)
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[order] = np.arange(n) % k  # deal the (class-grouped) shuffled order round-robin
    everything = np.arange(n, dtype=np.int64)
    return [(everything[fold_of != f], everything[fold_of == f]) for f in range(k)]


def _stratified_order(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ConfigError(
            f"labels has shape {labels.shape}; pass one class label per sample (shape ({n},))"
        )
    groups = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    return np.concatenate(groups)
