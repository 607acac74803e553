"""Raw calibration sums and counts, mergeable across processes (``reduce``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from .. import distributed
from ..errors import ConfigError

__all__ = ["CalibrationStats", "GRAD_STATS", "ACT_STATS"]

GRAD_STATS = ("grad", "grad_abs", "grad_sq", "wg", "wg_sq")
"""Per-parameter sums over batches of g, |g|, g², w·g and (w·g)² (g: the batch's gradient)."""

ACT_STATS = ("act_abs", "act_sq", "act_zero")
"""Per input feature of a weight-owning module: sums of |x|, x² and of (x == 0)."""


@dataclass
class CalibrationStats:
    """Sums over calibration batches, keyed ``"<stat>/<tensor or module name>"``.

    Nothing here is an average: averages are taken when a criterion reads them, so stats
    collected on disjoint shards of the data (one per process) combine exactly with
    :meth:`reduce` (or :meth:`all_reduce` under ``torch.distributed``) into the stats of one
    pass over all the data.

    Attributes:
        sums: ``"grad/fc.weight"`` -> tensor shaped like the parameter; ``"act_sq/fc"`` ->
            one value per input feature of module ``fc``.
        counts: ``"batches"`` (gradient stats) and ``"act/<module>"`` (rows seen per feature).
        loss_sum: sum of the batch losses.

    Example:
        >>> import torch
        >>> a = CalibrationStats({"grad/w": torch.ones(2)}, {"batches": 1.0}, 0.5)
        >>> b = CalibrationStats({"grad/w": torch.full((2,), 3.0)}, {"batches": 1.0}, 1.5)
        >>> both = CalibrationStats.reduce([a, b])
        >>> both.mean("grad", "w").tolist(), both.mean_loss
        ([2.0, 2.0], 1.0)
    """

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)
    loss_sum: float = 0.0

    def add(self, key: str, value: torch.Tensor) -> None:
        """Add ``value`` to the running sum ``key``."""
        prev = self.sums.get(key)
        v = value.detach().double()
        self.sums[key] = v.clone() if prev is None else prev + v

    def count(self, key: str, n: float) -> None:
        """Add ``n`` to the counter ``key``."""
        self.counts[key] = self.counts.get(key, 0.0) + float(n)

    @property
    def batches(self) -> int:
        return int(self.counts.get("batches", 0))

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(self.batches, 1)

    def has(self, stat: str, name: str) -> bool:
        return f"{stat}/{name}" in self.sums

    def mean(self, stat: str, name: str) -> torch.Tensor:
        """The average of ``stat`` for tensor/module ``name`` (over batches or rows)."""
        key = f"{stat}/{name}"
        if key not in self.sums:
            have = sorted({k.split("/", 1)[0] for k in self.sums})
            raise ConfigError(
                f"calibration stats hold no {key!r} (stats present: {have}); collect them with "
                f"Calibration(..., stats=[{stat!r}]) or the criterion that needs them"
            )
        denom_key = "batches" if stat in GRAD_STATS else f"act/{name}"
        return (self.sums[key] / max(self.counts.get(denom_key, 0.0), 1e-12)).float()

    def merge(self, other: CalibrationStats) -> CalibrationStats:
        """A new object holding the sums and counts of both."""
        out = CalibrationStats(dict(self.sums), dict(self.counts), self.loss_sum + other.loss_sum)
        for k, v in other.sums.items():
            out.sums[k] = v.clone() if k not in out.sums else out.sums[k] + v
        for k, n in other.counts.items():
            out.count(k, n)
        return out

    @staticmethod
    def reduce(parts: Iterable[CalibrationStats]) -> CalibrationStats:
        """Combine stats collected on disjoint data shards (e.g. gathered from every rank)."""
        out = CalibrationStats()
        for p in parts:
            out = out.merge(p)
        return out

    def all_reduce(self) -> CalibrationStats:
        """Sum every statistic across ``torch.distributed`` ranks in place; returns ``self``.

        Keys are reduced in sorted order and a rank that lacks a key (it saw no batch)
        contributes zeros, so uneven shards never deadlock
        (:func:`prunekit.distributed.all_reduce_named`).
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise ConfigError(
                "all_reduce needs an initialised torch.distributed process group; call "
                "torch.distributed.init_process_group first, or merge stats with reduce()"
            )
        self.sums = distributed.all_reduce_named(self.sums)
        counts = {k: torch.tensor(float(n), dtype=torch.float64) for k, n in self.counts.items()}
        counts["\0loss"] = torch.tensor(self.loss_sum, dtype=torch.float64)
        reduced = distributed.all_reduce_named(counts)
        self.loss_sum = float(reduced.pop("\0loss"))
        self.counts = {k: float(v) for k, v in reduced.items()}
        return self
