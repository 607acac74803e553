"""Dependency groups: which slices of which tensors must be cut together."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from .collect import collect_units
from .context import SplitSite
from .naming import block_stacks, group_label, is_model_stream, stacks_of
from .tracer import TraceResult, call_model, eval_mode, trace

__all__ = ["Member", "Group", "FrozenGroup", "DependencyGraph", "build_graph", "set_role_source"]

RoleSource = Callable[[nn.Module, str], str]
_ROLE_SOURCE: list[RoleSource] = []


def set_role_source(source: RoleSource) -> None:
    """Install ``source(module, tensor) -> role``, which names every member's role when a
    graph is built. ``prunekit.surgery`` installs its handlers' ``role`` (layer knowledge
    lives there; the graph cannot import it, as surgery builds on the graph)."""
    _ROLE_SOURCE[:] = [source]


@dataclass(eq=False)
class Member:
    """One tensor dimension of a group: ``indices[i]`` are its positions owned by unit i.

    ``indices`` is an int64 array of shape ``[units, positions per unit]``. ``role`` is what
    the tensor is, set by the owning module's surgery handler when the graph is built (one
    of :data:`prunekit.surgery.ROLES`: ``"weight"``, ``"bias"``, ``"norm_scale"`` ...);
    ``""`` for a member built by hand.
    """

    name: str
    dim: int
    indices: np.ndarray
    is_param: bool = True
    role: str = ""

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
        """``name``, ``dim``, ``indices`` (and ``role`` once set)."""
        out: dict[str, Any] = {"name": self.name, "dim": self.dim, "indices": self.indices.tolist()}
        if self.role:
            out["role"] = self.role
        return out


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
    uid: str = ""  # the unique key set by the graph builder (see :attr:`key`)
    label: str = ""  # the readable name set by the graph builder (see :attr:`name`)
    whole_stream: bool = False  # the group runs through every block of a stack
    model_stream: bool = False  # ... of stacks holding most of the model's blocks (naming.py)

    @property
    def num_units(self) -> int:
        return int(self.members[0].indices.shape[0]) if self.members else 0

    @property
    def key(self) -> str:
        """A stable, unique identifier: the first member's tensor name and dim
        (``"conv1.weight:0"``); when several groups own positions of that same tensor dim
        (a concat split at a point inside one branch), the first position this group owns
        is appended (``"a.weight:0@1"``). Keys depend only on the architecture, so plans
        keyed by them replay on a fresh trace."""
        return self.uid or base_key(self)

    @property
    def name(self) -> str:
        """What the group is, in words: ``"residual stream (embed.weight dim 1, 12 members,
        all 4 blocks of 'layers')"`` for a group that runs through a model's repeated
        blocks, ``"fc1.weight dim 0 (2 members)"`` otherwise."""
        return self.label or group_label(self.members, {})[0]

    def modules(self) -> list[str]:
        return sorted({m.module for m in self.members})

    def __str__(self) -> str:
        head = f"Group {self.id} ({self.num_units} units, {'exact' if self.exact else 'non-exact'})"
        flag = " [spans the whole residual stream]" if self.whole_stream else ""
        if self.model_stream:
            flag += " [model-wide: a cut leaves it out unless streams='prune']"
        lines = [f"{head}: {self.name}{flag}"]
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
        shared = [g.key for g in self.groups if g.key.startswith(f"{key}@")]
        hint = f" (that tensor dim is shared by groups {', '.join(shared)})" if shared else ""
        raise ConfigError(
            f"no group {key!r} in this graph{hint}; valid ids are 0..{len(self.groups) - 1}"
            f", keys e.g. {', '.join(g.key for g in self.groups[:4])}"
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
        streams = [g for g in self.groups if g.whole_stream]
        if streams:
            lines.append(
                f"{len(streams)} group(s) span a whole residual stream (cutting one narrows "
                f"every block): {', '.join(g.key for g in streams[:4])}"
            )
        wide = [g for g in self.groups if g.model_stream]
        if wide:
            lines.append(
                f"{len(wide)} of them run through most of the model's blocks (model-wide "
                f"residual stream: {', '.join(g.key for g in wide[:4])}); a cut leaves them out "
                "unless streams='prune'"
            )
        lines.extend(str(g) for g in self.groups)
        unsupported = [f for f in self.frozen if f.kind == "unsupported"]
        if unsupported:
            lines.append(f"Frozen by unsupported ops ({len(unsupported)}):")
            lines.extend(
                f"    {', '.join(f.members[:3])} ({f.num_units} units): {f.reason}"
                for f in unsupported
            )
        return "\n".join(lines)


def base_key(group: Group) -> str:
    """``"<first member tensor>:<dim>"``: the key of a group that owns that dim alone."""
    m = group.members[0]
    return f"{m.name}:{m.dim}"


def assign_keys(groups: list[Group]) -> None:
    """Give every group a unique :attr:`Group.key`; a duplicate is an engine bug (raises)."""
    count: dict[str, int] = {}
    for g in groups:
        count[base_key(g)] = count.get(base_key(g), 0) + 1
    seen: dict[str, int] = {}
    for g in groups:
        key = base_key(g)
        if count[key] > 1:
            key = f"{key}@{int(g.members[0].indices.min())}"
        if key in seen:
            raise RuntimeError(
                f"prunekit internal error: groups {seen[key]} and {g.id} both have key "
                f"{key!r}; plans keyed by it would mix their units. Please report this model."
            )
        seen[key] = g.id
        g.uid = key


def build_graph(
    model: nn.Module, example_inputs: Any, *, mode: str = "eval", attention: str = "heads"
) -> DependencyGraph:
    """Trace ``model`` (in ``mode``) and collect its dependency groups; ``attention`` says
    whether attention splits offer whole heads or head dims as units."""
    res = trace(model, example_inputs, mode=mode, attention=attention)
    graph = _collect(res)
    assign_roles(model, graph)
    graph.unused = res.unused
    if mode != "eval":  # checks after a cut run in eval mode: compare with eval outputs
        with torch.no_grad(), eval_mode(model):
            graph.example_output = call_model(model, example_inputs)
    return graph


def assign_roles(model: nn.Module, graph: DependencyGraph) -> None:
    """Set every member's :attr:`Member.role` from the installed role source (see
    :func:`set_role_source`); members whose module cannot be found keep ``""``."""
    if not _ROLE_SOURCE:
        return
    source = _ROLE_SOURCE[0]
    modules = dict(model.named_modules(remove_duplicate=False))
    for group in graph.groups:
        for m in group.members:
            module = modules.get(m.module)
            if module is not None:
                m.role = source(module, m.tensor)


def _collect(res: TraceResult) -> DependencyGraph:
    raw, frozen_rows = collect_units(res)
    groups: list[Group] = []
    root_to_unit: dict[int, tuple[int, int]] = {}
    for gid, g in enumerate(raw):
        members = [Member(n, d, idx, is_param) for n, d, idx, is_param in g["members"]]
        groups.append(Group(gid, members, not g["reasons"], g["reasons"]))
        for i, r in enumerate(g["roots"]):
            root_to_unit[r] = (gid, i)
    assign_keys(groups)
    stacks, blocks = stacks_of(res.tensors), block_stacks(res.tensors)
    for group in groups:
        group.label, group.whole_stream = group_label(group.members, stacks)
        group.model_stream = group.whole_stream and is_model_stream(group.members, blocks)
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
