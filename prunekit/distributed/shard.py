"""Each rank's part of the data: disjoint, deterministic, covering everything once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

from ..errors import DataError
from .group import rank, world_size

__all__ = ["Shard", "shard", "shard_rows"]


class Shard:
    """The batches of this rank, re-iterable (each pass draws ``batches`` again, so a
    shuffling DataLoader reshuffles): batch ``i`` goes to rank ``i % world_size`` (of the
    first ``limit`` batches overall). ``len()`` is this rank's count when the source has a
    length. A rank may get none (fewer batches than ranks); prunekit's collectives still run
    on it. ``even=True`` drops the last incomplete round so that every rank gets the same
    count (what DDP training needs; ``DistributedSampler(drop_last=True)`` does the same).

    Example:
        >>> list(shard(range(5))), len(shard(range(5), limit=3))
        ([0, 1, 2, 3, 4], 3)
    """

    def __init__(
        self, batches: Iterable[Any], limit: int | None = None, *, even: bool = False
    ) -> None:
        self.batches, self.limit, self.even = batches, limit, even

    def _stop(self) -> int | None:
        """Batches drawn overall: ``limit``; with ``even``, whole rounds of ``world_size``
        only (DDP needs the same number of steps on every rank)."""
        if not self.even:
            return self.limit
        total = len(self.batches)  # type: ignore[arg-type]
        total = total if self.limit is None else min(total, self.limit)
        return total - total % world_size()

    def __iter__(self) -> Iterator[Any]:
        r, w, stop = rank(), world_size(), self._stop()
        for i, batch in enumerate(self.batches):
            if stop is not None and i >= stop:
                return
            if i % w == r:
                yield batch

    def __len__(self) -> int:
        stop = self._stop()
        total = len(self.batches)  # type: ignore[arg-type]
        total = total if stop is None else min(total, stop)
        return len(range(rank(), total, world_size()))


def shard(batches: Iterable[Any], *, limit: int | None = None, even: bool = False) -> Shard:
    """This rank's part of ``batches`` (:class:`Shard`); everything without a group."""
    return Shard(batches, limit, even=even)


def _rows(value: Any, r: int, w: int, where: str) -> Any:
    if isinstance(value, torch.Tensor):
        if value.dim() == 0:
            return value
        if value.shape[0] % w:
            raise DataError(
                f"shard_rows: {where} has {value.shape[0]} rows, not divisible by the "
                f"{w} ranks; use a batch size that is a multiple of the world size"
            )
        n = value.shape[0] // w
        return value[r * n : (r + 1) * n]
    if isinstance(value, (tuple, list)):
        return type(value)(_rows(v, r, w, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: _rows(v, r, w, f"{where}[{k!r}]") for k, v in value.items()}
    return value


def shard_rows(batches: Iterable[Any]) -> Iterator[Any]:
    """Every batch, with this rank's contiguous block of rows (``B / world_size`` each).

    Under DDP the gradient averaged over the ranks is then the gradient of the whole batch,
    so N processes train like one process on the same global batches (without batch-norm:
    its statistics are per rank unless the model uses ``SyncBatchNorm``).

    Raises:
        DataError: A batch's row count is not divisible by the world size.

    Example:
        >>> import torch
        >>> [b.shape[0] for b in shard_rows([torch.zeros(4, 2)])]
        [4]
    """
    r, w = rank(), world_size()
    for i, batch in enumerate(batches):
        yield _rows(batch, r, w, f"batch {i}")
