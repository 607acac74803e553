"""PruningPlan: exactly which units of which groups were cut; JSON in, JSON out, replayable."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from .errors import PlanError
from .graph.dependency import DependencyGraph, Group, build_graph, positions_to_remove
from .model_record import ensure_record, record_of
from .spec import CutSpec
from .surgery import cut

__all__ = ["PruningPlan", "PLAN_FORMAT", "plan_of_choice", "pruning_history", "record_step"]

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


class PruningPlan:
    """The exact cut: for each group (by its stable key) the removed unit indices; or, for
    a cut made in several steps (a schedule), the list of those steps.

    ``PruningPlan(removed, group_sizes, meta)`` is one step; ``PruningPlan(steps=[...],
    meta=...)`` is a sequence of steps (each step's unit indices refer to the model as the
    previous steps left it, so :meth:`apply` re-analyses between steps). :attr:`steps` is
    ``[self]`` for one step. One-step plans serialise as before (``{"format", "removed",
    "group_sizes", "meta"}``), step lists as ``{"format", "schedule": [...], "meta"}``
    (what ``SchedulePlan`` wrote, which still loads).

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> res = prunekit.prune(net, torch.randn(1, 4), ratio=0.5)
        >>> plan = prunekit.PruningPlan.from_dict(res.plan.to_dict())
        >>> fresh = plan.apply(net, torch.randn(1, 4))
        >>> fresh[0].out_features
        4
        >>> two = prunekit.PruningPlan(steps=[plan, plan])
        >>> len(two.steps), two.num_removed, prunekit.PruningPlan.from_json(two.to_json()) == two
        (2, 8, True)
    """

    def __init__(
        self,
        removed: dict[str, list[int]] | None = None,
        group_sizes: dict[str, int] | None = None,
        meta: dict[str, Any] | None = None,
        *,
        steps: Sequence[PruningPlan] | None = None,
    ) -> None:
        self.meta: dict[str, Any] = dict(meta or {})
        self._steps: list[PruningPlan] | None = None
        if steps is not None:
            if removed or group_sizes:
                raise PlanError(
                    "a plan is either one step (removed=, group_sizes=) or a list of steps "
                    "(steps=), not both"
                )
            flat: list[PruningPlan] = []
            for p in steps:
                if not isinstance(p, PruningPlan):
                    raise PlanError(f"steps= holds a {type(p).__name__}; pass PruningPlans")
                flat.extend(p.steps)
            self._steps = flat
        self._removed = dict(removed or {})
        self._group_sizes = dict(group_sizes or {})

    @property
    def is_stepped(self) -> bool:
        """Whether the plan was built as a list of steps (``steps=``, a schedule)."""
        return self._steps is not None

    @property
    def steps(self) -> list[PruningPlan]:
        """The one-step plans, in order (``[self]`` for a one-step plan)."""
        return list(self._steps) if self._steps is not None else [self]

    def _single(self, what: str) -> PruningPlan:
        steps = self.steps
        if len(steps) != 1:
            raise PlanError(
                f"this plan has {len(steps)} steps, each with its own {what}: read "
                f"plan.steps[i].{what} (a step's unit indices refer to the model the previous "
                "steps left)"
            )
        return steps[0]

    @property
    def removed(self) -> dict[str, list[int]]:
        """Group key -> removed unit indices (of a one-step plan)."""
        return self._removed if self._steps is None else self._single("removed").removed

    @property
    def group_sizes(self) -> dict[str, int]:
        """Group key -> units before the cut (a step list: before its first step)."""
        if self._steps is None:
            return self._group_sizes
        return self._steps[0].group_sizes if self._steps else {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PruningPlan):
            return NotImplemented
        if self.is_stepped or other.is_stepped:
            return (
                self.is_stepped == other.is_stepped
                and self.meta == other.meta
                and (self.steps == other.steps)
            )
        return (self._removed, self._group_sizes, self.meta) == (
            other._removed, other._group_sizes, other.meta,
        )  # fmt: skip

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    def __repr__(self) -> str:
        if self._steps is not None:
            return f"PruningPlan(steps={self._steps!r}, meta={self.meta!r})"
        return f"PruningPlan(removed={self._removed!r}, group_sizes={self._group_sizes!r}, meta={self.meta!r})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        if self._steps is not None:
            return {
                "format": PLAN_FORMAT,
                "schedule": [p.to_dict() for p in self._steps],
                "meta": dict(self.meta),
            }
        return {
            "format": PLAN_FORMAT,
            "removed": {k: list(v) for k, v in self._removed.items()},
            "group_sizes": dict(self._group_sizes),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PruningPlan:
        """Rebuild a plan from :meth:`to_dict` output (also a ``SchedulePlan``'s)."""
        if isinstance(data, dict) and isinstance(data.get("schedule"), list):
            if data.get("format", PLAN_FORMAT) != PLAN_FORMAT:
                raise PlanError(f"plan format {data.get('format')} is not {PLAN_FORMAT}")
            steps = [PruningPlan.from_dict(d) for d in data["schedule"]]
            return PruningPlan(steps=steps, meta=dict(data.get("meta") or {}))
        if not isinstance(data, dict) or "removed" not in data:
            raise PlanError(
                "a plan dict needs a 'removed' mapping of group key -> unit indices (or a "
                "'schedule' list of step plans); got keys "
                f"{sorted(data) if isinstance(data, dict) else type(data).__name__}"
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
        return PruningPlan(removed, sizes, meta)

    def to_json(self, path: str | Path | None = None) -> str:
        """The plan as JSON text, also written to ``path`` when given."""
        return dump_json(self.to_dict(), path)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> PruningPlan:
        """A plan from JSON text or from a file written by :meth:`to_json`."""
        return PruningPlan.from_dict(load_json(text_or_path))

    @property
    def num_removed(self) -> int:
        """Units removed, over every step."""
        return sum(len(v) for p in self.steps for v in p._removed.values())

    def apply(self, model: nn.Module, example_inputs: Any, *, inplace: bool = False) -> nn.Module:
        """Replay the cut on a fresh instance of the same architecture.

        The result has exactly the pruned shapes, so a saved pruned ``state_dict`` loads.
        """
        work = model if inplace else copy.deepcopy(model)
        if self._steps is not None:
            for step in self._steps:
                step.apply(work, example_inputs, inplace=True)
            return work
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
        """Cut ``model`` (already analysed as ``graph``) according to this (one-step) plan."""
        removals, removed_units = self.removals(graph)
        cut(model, removals, graph, removed_units)

    def removals(
        self, graph: DependencyGraph
    ) -> tuple[dict[tuple[str, int], Any], dict[int, set[int]]]:
        """Positions to cut per (tensor, dim), and unit indices per group id, for ``graph``."""
        by_key = {g.key: g for g in graph.groups}
        own = self._single("removed")
        if own is not self:
            return own.removals(graph)
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


def record_step(model: nn.Module, plan: PruningPlan, example_inputs: Any) -> None:
    """Append ``plan`` to the pruning history carried by ``model`` (see :func:`pruning_history`).

    The history lives in the model's :class:`~prunekit.model_record.ModelRecord` (one
    documented attribute): it follows ``copy.deepcopy`` but never enters the ``state_dict``.
    The steps list is replaced, never appended to, so a copy never shares a later step.
    """
    record = ensure_record(model)
    record.steps = [*record.steps, plan]
    record.example_inputs = example_inputs


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
    record = record_of(model)
    return ([], None) if record is None else (list(record.steps), record.example_inputs)


def plan_of_choice(
    graph: DependencyGraph,
    candidates: list[Group],
    chosen: dict[int, list[int]],
    spec: CutSpec,
    *,
    importance: str,
    streams: Sequence[str] = (),
    trace_mode: str = "eval",
    attention: str = "heads",
) -> PruningPlan:
    """The :class:`PruningPlan` of one step: the units ``chosen`` per candidate group id, every
    group's width, and what sized the cut (``spec``, the criterion's name, the residual
    streams kept out, non-default trace settings) in its meta."""
    extra = spec.meta()
    meta = {k: extra.pop(k) for k in ("ratio", "scope", "round_to")}
    meta["importance"] = importance
    meta.update(extra)
    meta.update({f"target_{k}": v for k, v in spec.targets.items()})
    if streams:
        meta["streams_kept"] = list(streams)
    if trace_mode != "eval":
        meta["trace_mode"] = trace_mode
    if attention != "heads":
        meta["attention"] = attention
    return PruningPlan(
        {g.key: chosen[g.id] for g in candidates if chosen[g.id]},
        {g.key: g.num_units for g in graph.groups},
        meta,
    )
