"""Data-free criteria: weight magnitude (L1/L2 with group reduction) and random."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..errors import ConfigError
from ..graph.dependency import Group, Member
from .base import Criterion
from .registry import register_importance

__all__ = ["Magnitude", "RandomImportance", "unit_slices"]

_REDUCTIONS = ("mean", "sum", "max")


def unit_slices(member: Member, tensor: torch.Tensor) -> torch.Tensor:
    """``[num_units, ...]``: the slice of ``tensor`` that each unit owns in ``member``."""
    idx = torch.from_numpy(member.indices).to(tensor.device)
    moved = tensor.detach().movedim(member.dim, 0)
    if idx.shape[1] == 1 and bool((idx[:, 0] == torch.arange(len(idx))).all()):
        return moved[: len(idx)].reshape(len(idx), -1)  # the common case: unit i = position i
    return moved[idx].reshape(len(idx), -1)


@dataclass
class Magnitude(Criterion):
    """``||W_u||_p`` per member, reduced over the group's parameter members.

    Args:
        p: the norm order (1 or 2).
        reduction: how member norms combine: ``"mean"``, ``"sum"`` or ``"max"``.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.importance import Magnitude
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> g = prunekit.analyze(net, torch.randn(1, 3))
        >>> Magnitude(p=1)(g.groups[0], g.tensors).shape
        torch.Size([4])
    """

    p: int = 2
    reduction: str = "mean"
    zero_unit_lowest: ClassVar[bool] = True
    _cache_key: int = field(default=0, init=False, repr=False, compare=False)
    _cache: dict[str, tuple[tuple[Any, ...], torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.reduction not in _REDUCTIONS:
            raise ConfigError(
                f"Magnitude reduction {self.reduction!r} is unknown; use one of {_REDUCTIONS}"
            )

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._cache_key != id(tensors):  # one analysis' tensors: reuse per-tensor sums
            self._cache_key, self._cache = id(tensors), {}
        norms = [self._member_norms(m, tensors[m.name]) for m in group.members if m.is_param]
        stacked = torch.stack(norms)
        if self.reduction == "sum":
            return stacked.sum(0)
        if self.reduction == "max":
            return stacked.amax(0)
        return stacked.mean(0)

    def _kernel_sums(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """``[A, B]``: sums of ``|w|^p`` over the trailing dims of a >2-D tensor, computed
        once per tensor (its output- and input-side members both read it)."""
        key = (t.data_ptr(), tuple(t.shape), t._version)
        hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        flat = t.reshape(t.shape[0], t.shape[1], -1)
        sums: torch.Tensor = torch.linalg.vector_norm(flat, ord=self.p, dim=-1)  # fused
        sums = sums.square() if self.p == 2 else sums if self.p == 1 else sums.pow(self.p)
        self._cache[name] = (key, sums)
        return sums

    def _member_norms(self, member: Member, tensor: torch.Tensor) -> torch.Tensor:
        """``||W_u||_p`` of each unit's slice, from per-position sums of ``|w|^p`` (no copy
        to bring ``member.dim`` first: a strided ``vector_norm`` is several times slower)."""
        t = tensor.detach().float()
        if t.dim() > 2 and member.dim < 2:  # conv kernels: contiguous trailing sums first
            powed = self._kernel_sums(member.name, t)
        else:
            powed = t.square() if self.p == 2 else t.abs() if self.p == 1 else t.abs().pow(self.p)
        other = [d for d in range(powed.dim()) if d != member.dim]
        per_pos = powed.sum(dim=other) if other else powed
        idx = torch.from_numpy(member.indices).to(t.device)
        summed = per_pos[idx[:, 0]] if idx.shape[1] == 1 else per_pos[idx].sum(1)
        if self.p == 2:
            return summed.sqrt()
        return summed if self.p == 1 else summed.pow(1.0 / self.p)


@dataclass
class RandomImportance(Criterion):
    """Uniform random scores: the control every criterion must beat."""

    seed: int = 0

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + group.id)
        return torch.rand(group.num_units, generator=gen)


register_importance("l1", lambda: Magnitude(p=1))
register_importance("l2", lambda: Magnitude(p=2))
register_importance("random", RandomImportance)
