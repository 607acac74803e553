"""SchedulePlan: the per-step plans of a multi-step prune, replayable in order."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import PlanError
from ..plan import PruningPlan, dump_json, load_json

__all__ = ["SchedulePlan"]


@dataclass
class SchedulePlan:
    """Every step's :class:`PruningPlan`, in order. Each step's unit indices refer to the
    model as the previous steps left it, so replay re-analyses between steps.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.schedule import Iterative
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> out = Iterative(0.5, steps=2).run(prunekit.Pruner(net, torch.randn(1, 4)))
        >>> plan = prunekit.schedule.SchedulePlan.from_json(out.plan.to_json())
        >>> plan.apply(net, torch.randn(1, 4))[0].out_features
        8
    """

    steps: list[PruningPlan] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_removed(self) -> int:
        return sum(p.num_removed for p in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"schedule": [p.to_dict() for p in self.steps], "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SchedulePlan:
        if not isinstance(data, dict) or not isinstance(data.get("schedule"), list):
            raise PlanError(
                "a schedule plan dict needs a 'schedule' list of step plans; got "
                f"{sorted(data) if isinstance(data, dict) else type(data).__name__}"
            )
        return cls([PruningPlan.from_dict(d) for d in data["schedule"]], dict(data.get("meta", {})))

    def to_json(self, path: str | Path | None = None) -> str:
        """The schedule plan as JSON text, also written to ``path`` when given."""
        return dump_json(self.to_dict(), path)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> SchedulePlan:
        """A schedule plan from JSON text or a file written by :meth:`to_json`."""
        return cls.from_dict(load_json(text_or_path))

    def apply(self, model: nn.Module, example_inputs: Any, *, inplace: bool = False) -> nn.Module:
        """Replay every step, in order, on a fresh instance of the same architecture."""
        work = model if inplace else copy.deepcopy(model)
        for plan in self.steps:
            plan.apply(work, example_inputs, inplace=True)
        return work
