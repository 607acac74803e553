"""Collectives that never deadlock on uneven data, and a check that every rank agrees.

The rules (the known deadlocks of other tools come from breaking them):

- every rank calls the same collectives in the same order: keys are sorted, and a rank that
  saw no data still takes part (its missing sums are zeros of the shape the others report);
- agreement is checked, not assumed: :func:`check_same` gathers a digest of each item from
  every rank and raises on *every* rank when they differ, naming the first differing item.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist

from ..errors import PlanError
from .group import active, rank, world_size

__all__ = [
    "all_reduce_named",
    "all_reduce_scalars",
    "broadcast_object",
    "check_same",
    "digest",
    "mean_across_ranks",
]


def _gather(obj: Any) -> list[Any]:
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_named(sums: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Sum every named tensor across ranks; returns the summed dict (inputs untouched).

    Keys one rank lacks (it saw no batch touching them) are created as zeros with the
    shape and dtype another rank reports, so every rank reduces the same sorted key list.
    Without a group the input is returned as a dict copy.

    Raises:
        PlanError: Two ranks hold the same key with different shapes.
    """
    if not active():
        return dict(sums)
    meta = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in sums.items()}
    union: dict[str, tuple[tuple[int, ...], str]] = {}
    for r, theirs in enumerate(_gather(meta)):
        for k, m in theirs.items():
            if union.setdefault(k, m) != m:
                raise PlanError(
                    f"all_reduce_named: {k!r} is {union[k]} on one rank and {m} on rank {r}; "
                    "every rank must score the same model"
                )
    device = next((v.device for v in sums.values()), torch.device("cpu"))
    out: dict[str, torch.Tensor] = {}
    for k in sorted(union):
        shape, dtype = union[k]
        t = sums[k].clone() if k in sums else torch.zeros(shape, dtype=getattr(torch, dtype))
        t = t.to(device)
        dist.all_reduce(t)
        out[k] = t
    return out


def all_reduce_scalars(values: Sequence[float]) -> list[float]:
    """Sum a fixed-length list of numbers across ranks (float64)."""
    if not active():
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def mean_across_ranks(value: float, weight: float = 1.0) -> float:
    """The ``weight``-weighted mean of ``value`` over the ranks (e.g. a metric with its
    sample count), identical on every rank."""
    total, w = all_reduce_scalars([value * weight, weight])
    return total / w if w else value


def broadcast_object(obj: Any, *, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (pickled; rank-local objects only)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def digest(value: Any) -> str:
    """A short SHA-256 of ``repr(value)`` (tensors by their exact values)."""
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous().numpy().tobytes() + str(value.shape).encode()
    else:
        data = repr(value).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def check_same(what: str, items: Sequence[tuple[str, Any]]) -> None:
    """Raise on every rank unless every rank holds the same ``items`` (name, value) list.

    Args:
        what: What is compared, for the message (e.g. ``"pruning plan"``).
        items: ``(name, value)`` pairs in a deterministic order; values are digested.

    Raises:
        PlanError: Naming the first item whose digest differs and the ranks involved.
    """
    if not active():
        return
    mine = [(name, digest(v)) for name, v in items]
    everyone = _gather(mine)
    ref = everyone[0]
    for r, theirs in enumerate(everyone[1:], start=1):
        if theirs == ref:
            continue
        for i in range(max(len(ref), len(theirs))):
            a = ref[i] if i < len(ref) else None
            b = theirs[i] if i < len(theirs) else None
            if a != b:
                name = (a or b or ("?", ""))[0]
                raise PlanError(
                    f"the {what} differs between rank 0 and rank {r} (this is rank {rank()}): "
                    f"first at item {i} {name!r} ({a} vs {b}); every rank must see the same "
                    "model, criterion and reduced calibration statistics (seeds, data order)"
                )
