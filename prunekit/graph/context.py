"""Per-tensor labels and the context that op rules read and write.

A tensor's *info* holds, for each dimension, either ``None`` (the dimension carries no
prunable unit) or an array of atom ids, one per position, plus a parallel boolean array
saying whether the position is guaranteed to be zero once its unit's member slices are
zeroed (used to decide exactness of reductions and contractions).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .unionfind import AtomTable

__all__ = ["Info", "TraceContext", "SplitSite", "UnsupportedOp"]

Label = np.ndarray | None


@dataclass
class Info:
    """Labels and zero-guarantees for every dimension of one tensor."""

    labels: list[Label]
    zeros: list[Label]

    @classmethod
    def empty(cls, ndim: int) -> Info:
        return cls([None] * ndim, [None] * ndim)

    @property
    def ndim(self) -> int:
        return len(self.labels)

    def is_empty(self) -> bool:
        return all(lab is None for lab in self.labels)

    def atoms(self) -> np.ndarray:
        parts = [lab for lab in self.labels if lab is not None]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@dataclass
class SplitSite:
    """A reshape whose target shape holds a prunable size, and the module it ran in.

    ``kind="split"``: a prunable dim was split into ``sizes`` and ``axis`` is the pruned
    one (heads); ``kind="size"``: a reshape produced a prunable dim of size ``sizes[0]``
    while the module holds an int attribute of that value (``hidden_dim``). After a cut,
    such attributes follow the new size; ``kind="parts"``: one piece of a ``split`` with
    explicit sizes, ``sizes[0]`` wide, whose size is read from the module attributes named
    in ``attrs`` (``"c"``, or ``"split_sizes[1]"`` for a list element).
    """

    module_path: str
    sizes: tuple[int, ...]
    axis: int
    rep_atoms: np.ndarray
    kind: str = "split"
    attrs: tuple[str, ...] = ()


@dataclass
class UnsupportedOp:
    """An op the engine could not map, where it was met, and the atoms it froze."""

    op: str
    module_path: str


@dataclass
class TraceContext:
    """Mutable state shared by the tracer and the op rules."""

    table: AtomTable = field(default_factory=AtomTable)
    module_stack: list[tuple[str, nn.Module]] = field(default_factory=list)
    splits: list[SplitSite] = field(default_factory=list)
    unsupported: list[UnsupportedOp] = field(default_factory=list)
    fn_stack: list[str] = field(default_factory=list)  # Python-level torch calls in flight
    attention: str = "heads"  # which axis of a head split is pruned: "heads" or "head_dims"
    size_reads: list[Any] = field(default_factory=list)  # graph.sizes.SizeRead, live ones
    opaque: list[str] = field(default_factory=list)  # TorchScript submodules met (leaves)
    _infos: dict[int, tuple[weakref.ref[torch.Tensor], Info]] = field(default_factory=dict)
    _pinned: list[torch.Tensor] = field(default_factory=list)

    # -- tensor infos -------------------------------------------------------------------
    def get(self, t: Any) -> Info:
        """Info of tensor ``t`` (all-``None`` when the tensor is unknown)."""
        if not isinstance(t, torch.Tensor):
            return Info.empty(0)
        entry = self._infos.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry[1]
        return Info.empty(t.dim())

    def set(self, t: Any, info: Info) -> None:
        """Attach ``info`` to tensor ``t`` (ignored for non-tensors)."""
        if not isinstance(t, torch.Tensor):
            return
        if info.ndim != t.dim():
            raise RuntimeError(f"label rank {info.ndim} != tensor rank {t.dim()}")
        for d, lab in enumerate(info.labels):
            if lab is not None and len(lab) != t.shape[d]:
                raise RuntimeError(f"label of size {len(lab)} on dim {d} of {tuple(t.shape)}")
            if lab is not None and info.zeros[d] is None:
                info.zeros[d] = np.zeros(len(lab), dtype=bool)
        self._infos[id(t)] = (weakref.ref(t), info)

    def pin(self, t: torch.Tensor) -> None:
        """Keep ``t`` alive for the whole trace (parameters and buffers)."""
        self._pinned.append(t)

    def fresh(self, t: torch.Tensor, *, zero: bool) -> Info:
        """Give every dimension of ``t`` fresh atoms (used for parameters and buffers)."""
        labels: list[Label] = [self.table.new(s) for s in t.shape]
        zeros: list[Label] = [np.full(s, zero) for s in t.shape]
        info = Info(labels, zeros)
        self.set(t, info)
        return info

    # -- where are we -------------------------------------------------------------------
    @property
    def module_path(self) -> str:
        return self.module_stack[-1][0] if self.module_stack else ""

    @property
    def module(self) -> nn.Module | None:
        return self.module_stack[-1][1] if self.module_stack else None

    def where(self, op: str) -> str:
        return f"{op} in module '{self.module_path or '<root>'}'"

    # -- coupling helpers ---------------------------------------------------------------
    def couple(self, a: Label, b: Label, reason: str) -> Label:
        """Couple two labels of the same dimension size; a ``None`` side freezes the other."""
        if a is None and b is None:
            return None
        if a is None or b is None:
            lab = a if b is None else b
            assert lab is not None
            self.table.freeze(lab, f"coupled to an untracked tensor by {reason}")
            return lab
        self.table.union(a, b)
        return a

    def freeze_info(self, info: Info, reason: str, kind: str = "fixed") -> None:
        for lab in info.labels:
            if lab is not None:
                self.table.freeze(lab, reason, kind)

    def unsupported_op(self, op: str, infos: list[Info]) -> None:
        """Freeze every labelled dimension touching an op the engine cannot map."""
        reason = (
            f"unsupported op {self.where(op)}; register an op rule with "
            "prunekit.graph.register_op_rule or a module handler with "
            "prunekit.surgery.register_handler"
        )
        touched = False
        for info in infos:
            if not info.is_empty():
                touched = True
                self.freeze_info(info, reason, kind="unsupported")
        if touched:
            self.unsupported.append(UnsupportedOp(op, self.module_path))
