"""Latency of several callables measured side by side, so that machine load hits all alike.

Two protocols, both under ``torch.inference_mode`` with a fixed intra-op thread count:

- :func:`time_interleaved`: each callable runs ``runs`` timed times on one batch, split into
  ``rounds`` blocks taken in alternating order (A B C, C B A, ...) after ``warmup`` untimed
  calls of each; the summary is the median per call with its quartiles;
- :func:`time_per_row`: each callable runs on each single-row input ``repeats`` times
  (interleaved the same way); a row's time is its median, and the summary is over rows:
  ``mean_ms`` is what one input costs on average (a cascade's fast and slow rows mixed),
  ``median_ms``/``q1_ms``/``q3_ms`` the distribution.

Numbers depend on the machine and its load: compare only within one run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from prunekit.errors import ConfigError

__all__ = ["Timing", "time_interleaved", "time_per_row"]


@dataclass(frozen=True)
class Timing:
    """Per-call latency in milliseconds.

    Attributes:
        median_ms, q1_ms, q3_ms, mean_ms: Statistics of the per-call (or per-row) times.
        runs: Timed calls (per row for :func:`time_per_row`).
        rows: Input rows per call.
        threads: Intra-op threads during the measurement.

    Example:
        >>> Timing(2.0, 1.8, 2.4, 2.1, 20, 64, 1).per_input_ms
        0.03125
    """

    median_ms: float
    q1_ms: float
    q3_ms: float
    mean_ms: float
    runs: int
    rows: int
    threads: int

    @property
    def per_input_ms(self) -> float:
        """The median call time divided by the rows per call."""
        return self.median_ms / max(self.rows, 1)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (with ``per_input_ms``)."""
        return {**asdict(self), "per_input_ms": self.per_input_ms}


@contextmanager
def _threads(threads: int | None) -> Iterator[int]:
    old = torch.get_num_threads()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads={threads!r} must be a positive int or None (as is)")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def _summary(ms: Sequence[float], runs: int, rows: int, threads: int) -> Timing:
    arr = np.asarray(ms, dtype=np.float64)
    return Timing(
        median_ms=float(np.median(arr)),
        q1_ms=float(np.percentile(arr, 25)),
        q3_ms=float(np.percentile(arr, 75)),
        mean_ms=float(arr.mean()),
        runs=runs,
        rows=rows,
        threads=threads,
    )


def _check(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} must be an int >= {low}")


def _once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def time_interleaved(
    calls: Sequence[Callable[[], Any]],
    *,
    rows: int,
    warmup: int = 3,
    runs: int = 20,
    rounds: int = 4,
    threads: int | None = None,
) -> list[Timing]:
    """One :class:`Timing` per callable, timed in alternating blocks (see the module doc).

    Example:
        >>> fast, slow = (lambda: sum(range(10))), (lambda: sum(range(10000)))
        >>> a, b = time_interleaved([fast, slow], rows=1, runs=8, rounds=2)
        >>> a.runs, a.median_ms < b.median_ms
        (8, True)
    """
    _check("warmup", warmup, 0)
    _check("runs", runs, 1)
    _check("rounds", rounds, 1)
    blocks = [runs // rounds + (i < runs % rounds) for i in range(min(rounds, runs))]
    times: list[list[float]] = [[] for _ in calls]
    order = list(range(len(calls)))
    with _threads(threads) as used, torch.inference_mode():
        for fn in calls:
            for _ in range(warmup):
                fn()
        for i, n in enumerate(blocks):
            for which in order if i % 2 == 0 else order[::-1]:
                times[which] += [_once(calls[which]) for _ in range(n)]
    return [_summary(t, runs, rows, used) for t in times]


def time_per_row(
    models: Sequence[Callable[[Any], Any]],
    row_inputs: Sequence[Any],
    *,
    warmup: int = 2,
    repeats: int = 3,
    threads: int | None = None,
) -> list[Timing]:
    """One :class:`Timing` per model over single-row inputs (see the module doc).

    Example:
        >>> ts = time_per_row([lambda x: x + 1], [torch.ones(1, 2)] * 3, repeats=2)
        >>> ts[0].runs, ts[0].rows
        (2, 1)
    """
    _check("warmup", warmup, 0)
    _check("repeats", repeats, 1)
    if not row_inputs:
        raise ConfigError("time_per_row got no inputs; pass at least one single-row input")
    per_row: list[list[list[float]]] = [[[] for _ in row_inputs] for _ in models]
    order = list(range(len(models)))
    with _threads(threads) as used, torch.inference_mode():
        for model in models:
            for x in row_inputs[: max(warmup, 0)]:
                model(x)
        for r in range(repeats):
            for which in order if r % 2 == 0 else order[::-1]:
                for i, x in enumerate(row_inputs):
                    per_row[which][i].append(_once(partial(models[which], x)))
    return [_summary([statistics.median(t) for t in rows], repeats, 1, used) for rows in per_row]
