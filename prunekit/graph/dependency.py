"""Dependency groups: which slices of which tensors must be cut together."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from .collect import collect_units
from .context import SplitSite
from .tracer import TraceResult, call_model, eval_mode, trace

__all__ = ["Member", "Group", "FrozenGroup", "DependencyGraph", "build_graph"]


@dataclass(eq=False)
class Member:
    """One tensor dimension of a group: ``indices[i]`` are its positions owned by unit i.

    ``indices`` is an int64 array of shape ``[units, positions per unit]``.
    """

    name: str
    dim: int
    indices: np.ndarray
    is_param: bool = True

    def __post_init__(self) -> None:
        idx = np.asarray(self.indices, dtype=np.int64)
        self.indices = idx.reshape(len(idx), -1) if idx.ndim != 2 else idx

    @property
    def module(self) -> str:
        return self.name.rpartition(".")[0]

    @property
    def tensor(self) -> str:
        return self.name.rpartition(".")[2]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "indices": self.indices.tolist()}


@dataclass
class Group:
    """A set of units that are cut together across every member tensor.

    ``exact`` means zeroing a unit's member slices and then removing the unit leaves the
    model's function unchanged; otherwise ``reasons`` names the op that sees the unit.
    """

    id: int
    members: list[Member]
    exact: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def num_units(self) -> int:
        return int(self.members[0].indices.shape[0]) if self.members else 0

    @property
    def key(self) -> str:
        """A stable identifier: the first member's tensor name and dim."""
        m = self.members[0]
        return f"{m.name}:{m.dim}"

    def modules(self) -> list[str]:
        return sorted({m.module for m in self.members})

    def __str__(self) -> str:
        head = f"Group {self.id} ({self.num_units} units, {'exact' if self.exact else 'non-exact'})"
        lines = [head]
        if not self.exact:
            lines.extend(f"    non-exact: {r}" for r in self.reasons[:3])
        for m in self.members:
            per = int(m.indices.shape[1]) if len(m.indices) else 0
            kind = "" if m.is_param else " [buffer]"
            lines.append(f"    {m.name} dim={m.dim} x{per}/unit{kind}")
        return "\n".join(lines)


@dataclass
class FrozenGroup:
    """Units that can never be cut, with the reason (model output, unsupported op ...)."""

    members: list[str]
    num_units: int
    reason: str
    kind: str


@dataclass
class DependencyGraph:
    """The result of :func:`prunekit.analyze`: prunable groups of a traced model."""

    groups: list[Group]
    frozen: list[FrozenGroup]
    splits: list[tuple[SplitSite, list[tuple[int, int] | None]]]
    tensors: dict[str, torch.Tensor]
    example_output: Any = None
    unused: list[str] = field(default_factory=list)

    def group(self, key: int | str) -> Group:
        """A group by id or by :attr:`Group.key`."""
        for g in self.groups:
            if g.id == key or g.key == key:
                return g
        raise ConfigError(
            f"no group {key!r} in this graph; valid ids are 0..{len(self.groups) - 1}"
        )

    def __len__(self) -> int:
        return len(self.groups)

    def __iter__(self) -> Iterator[Group]:
        return iter(self.groups)

    def __str__(self) -> str:
        exact = sum(g.exact for g in self.groups)
        lines = [
            f"DependencyGraph: {len(self.groups)} prunable groups ({exact} exact), "
            f"{sum(g.num_units for g in self.groups)} units"
        ]
        lines.extend(str(g) for g in self.groups)
        unsupported = [f for f in self.frozen if f.kind == "unsupported"]
        if unsupported:
            lines.append(f"Frozen by unsupported ops ({len(unsupported)}):")
            lines.extend(
                f"    {', '.join(f.members[:3])} ({f.num_units} units): {f.reason}"
                for f in unsupported
            )
        return "\n".join(lines)


def build_graph(
    model: nn.Module, example_inputs: Any, *, mode: str = "eval", attention: str = "heads"
) -> DependencyGraph:
    """Trace ``model`` (in ``mode``) and collect its dependency groups; ``attention`` says
    whether attention splits offer whole heads or head dims as units."""
    res = trace(model, example_inputs, mode=mode, attention=attention)
    graph = _collect(res)
    graph.unused = res.unused
    if mode != "eval":  # checks after a cut run in eval mode: compare with eval outputs
        with torch.no_grad(), eval_mode(model):
            graph.example_output = call_model(model, example_inputs)
    return graph


def _collect(res: TraceResult) -> DependencyGraph:
    raw, frozen_rows = collect_units(res)
    groups: list[Group] = []
    root_to_unit: dict[int, tuple[int, int]] = {}
    for gid, g in enumerate(raw):
        members = [Member(n, d, idx, is_param) for n, d, idx, is_param in g["members"]]
        groups.append(Group(gid, members, not g["reasons"], g["reasons"]))
        for i, r in enumerate(g["roots"]):
            root_to_unit[r] = (gid, i)
    table = res.ctx.table
    splits = []
    for site in res.ctx.splits:
        rows = [root_to_unit.get(int(r)) for r in table.find(site.rep_atoms).tolist()]
        splits.append((site, rows))
    frozen = [
        FrozenGroup(sorted(names), n, reason, kind)
        for (reason, kind), (names, n) in frozen_rows.items()
    ]
    return DependencyGraph(groups, frozen, splits, res.tensors, res.output)


def positions_to_remove(
    group: Group, units: list[int], into: dict[tuple[str, int], np.ndarray] | None = None
) -> dict[tuple[str, int], np.ndarray]:
    """Positions per (tensor name, dim) removed when ``units`` of ``group`` are cut.

    Several groups can own different positions of the same tensor dim (a concat's consumer),
    so results are merged into ``into`` when given.
    """
    out: dict[tuple[str, int], np.ndarray] = {} if into is None else into
    for m in group.members:
        pos = m.indices[np.asarray(units, dtype=np.int64)].ravel()
        prev = out.get((m.name, m.dim))
        out[(m.name, m.dim)] = np.unique(pos if prev is None else np.concatenate([prev, pos]))
    return out
