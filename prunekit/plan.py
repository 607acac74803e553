"""PruningPlan: exactly which units of which groups were cut; JSON in, JSON out, replayable."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .errors import PlanError
from .graph.dependency import DependencyGraph, build_graph, positions_to_remove
from .surgery import cut

__all__ = ["PruningPlan", "PLAN_FORMAT", "pruning_history", "record_step"]

PLAN_FORMAT = 1


def dump_json(data: dict[str, Any], path: str | Path | None = None) -> str:
    """``data`` as indented JSON text, also written to ``path`` when given."""
    text = json.dumps(data, indent=1)
    if path is not None:
        Path(path).write_text(text)
    return text


def load_json(text_or_path: str | Path) -> Any:
    """Parse JSON text, or the JSON file at ``text_or_path``; bad JSON is a PlanError."""
    text = str(text_or_path)
    if not text.lstrip().startswith("{"):
        try:
            text = Path(text_or_path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise PlanError(
                f"cannot read the plan file {str(text_or_path)[:200]!r} ({type(exc).__name__}: "
                f"{exc}); pass JSON text or the path of a file written by to_json"
            ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(
            f"the plan is not valid JSON ({exc}); pass a plan saved by to_json"
        ) from exc


@dataclass
class PruningPlan:
    """The exact cut: for each group (by its stable key) the removed unit indices.

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> res = prunekit.prune(net, torch.randn(1, 4), ratio=0.5)
        >>> plan = prunekit.PruningPlan.from_dict(res.plan.to_dict())
        >>> fresh = plan.apply(net, torch.randn(1, 4))
        >>> fresh[0].out_features
        4
    """

    removed: dict[str, list[int]]
    group_sizes: dict[str, int]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "format": PLAN_FORMAT,
            "removed": {k: list(v) for k, v in self.removed.items()},
            "group_sizes": dict(self.group_sizes),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PruningPlan:
        """Rebuild a plan from :meth:`to_dict` output."""
        if not isinstance(data, dict) or "removed" not in data:
            raise PlanError(
                "a plan dict needs a 'removed' mapping of group key -> unit indices; got "
                f"keys {sorted(data) if isinstance(data, dict) else type(data).__name__}"
            )
        if data.get("format", PLAN_FORMAT) != PLAN_FORMAT:
            raise PlanError(f"plan format {data.get('format')} is not {PLAN_FORMAT}")
        try:
            removed = {str(k): [int(i) for i in v] for k, v in data["removed"].items()}
            sizes = {str(k): int(v) for k, v in data.get("group_sizes", {}).items()}
            meta = dict(data.get("meta", {}))
        except (TypeError, ValueError, AttributeError) as exc:
            raise PlanError(
                f"malformed plan ({exc}); 'removed' must map group keys to lists of unit "
                "indices, 'group_sizes' group keys to ints, 'meta' must be a mapping"
            ) from exc
        return cls(removed, sizes, meta)

    def to_json(self, path: str | Path | None = None) -> str:
        """The plan as JSON text, also written to ``path`` when given."""
        return dump_json(self.to_dict(), path)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> PruningPlan:
        """A plan from JSON text or from a file written by :meth:`to_json`."""
        return cls.from_dict(load_json(text_or_path))

    @property
    def num_removed(self) -> int:
        return sum(len(v) for v in self.removed.values())

    def apply(self, model: nn.Module, example_inputs: Any, *, inplace: bool = False) -> nn.Module:
        """Replay the cut on a fresh instance of the same architecture.

        The result has exactly the pruned shapes, so a saved pruned ``state_dict`` loads.
        """
        work = model if inplace else copy.deepcopy(model)
        graph = build_graph(
            work,
            example_inputs,
            mode=str(self.meta.get("trace_mode", "eval")),
            attention=str(self.meta.get("attention", "heads")),
        )
        self.apply_to_graph(work, graph)
        record_step(work, self, example_inputs)
        return work

    def apply_to_graph(self, model: nn.Module, graph: DependencyGraph) -> None:
        """Cut ``model`` (already analysed as ``graph``) according to this plan."""
        removals, removed_units = self.removals(graph)
        cut(model, removals, graph, removed_units)

    def removals(
        self, graph: DependencyGraph
    ) -> tuple[dict[tuple[str, int], Any], dict[int, set[int]]]:
        """Positions to cut per (tensor, dim), and unit indices per group id, for ``graph``."""
        by_key = {g.key: g for g in graph.groups}
        removals: dict[tuple[str, int], Any] = {}
        removed_units: dict[int, set[int]] = {}
        for key, units in self.removed.items():
            group = by_key.get(key)
            if group is None:
                raise PlanError(
                    f"plan group {key!r} is not a prunable group of this model; the plan was "
                    "made for another architecture (valid keys: "
                    f"{', '.join(list(by_key)[:8])}...)"
                )
            expected = self.group_sizes.get(key, group.num_units)
            if expected != group.num_units or any(u >= group.num_units or u < 0 for u in units):
                raise PlanError(
                    f"plan group {key!r} expects {expected} units with indices {units[:5]}..., "
                    f"the model has {group.num_units}; replay the plan on an unpruned model"
                )
            if not units:
                continue
            if len(set(units)) >= group.num_units:
                raise PlanError(
                    f"plan group {key!r} removes all {group.num_units} units; a group must keep "
                    "at least one unit"
                )
            positions_to_remove(group, units, removals)
            removed_units[group.id] = set(units)
        return removals, removed_units


_HISTORY = "_prunekit_history"


def record_step(model: nn.Module, plan: PruningPlan, example_inputs: Any) -> None:
    """Append ``plan`` to the pruning history carried by ``model`` (see :func:`pruning_history`).

    The history is a plain attribute: it follows ``copy.deepcopy`` but never enters the
    ``state_dict``.
    """
    steps, _ = pruning_history(model)
    model.__dict__[_HISTORY] = (steps + [plan], example_inputs)


def pruning_history(model: nn.Module) -> tuple[list[PruningPlan], Any]:
    """Every plan cut into ``model`` so far, in order, and the example inputs they were traced
    with (``([], None)`` for a model prunekit never cut). Replaying the plans in order on a
    fresh instance of the architecture rebuilds the pruned shapes.

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> pruned = prunekit.prune(net, torch.randn(1, 4), ratio=0.5).model
        >>> steps, inputs = prunekit.plan.pruning_history(pruned)
        >>> len(steps), tuple(inputs.shape), prunekit.plan.pruning_history(net)[0]
        (1, (1, 4), [])
    """
    steps, inputs = model.__dict__.get(_HISTORY, ([], None))
    return list(steps), inputs
