"""``SchedulePlan``: deprecated; a plan of several steps is a :class:`~prunekit.plan.PruningPlan`.

``PruningPlan(steps=[...])`` holds the per-step plans (``plan.steps``), serialises to the
same JSON a ``SchedulePlan`` wrote (``{"schedule": [...], "meta": ...}``) and replays it.
``SchedulePlan(...)`` still builds one (with a :class:`DeprecationWarning`), and
``isinstance(plan, SchedulePlan)`` is true for every plan built as a list of steps.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from ..errors import PlanError
from ..plan import PruningPlan

__all__ = ["SchedulePlan"]


class _StepListMeta(type):
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, PruningPlan) and obj.is_stepped


class SchedulePlan(metaclass=_StepListMeta):
    """Deprecated: use ``PruningPlan(steps=steps, meta=meta)`` (same JSON, same replay).

    Example:
        >>> import warnings, prunekit
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     plan = SchedulePlan([prunekit.PruningPlan({"g": [0]}, {"g": 4})])
        >>> type(plan).__name__, plan.num_removed, isinstance(plan, SchedulePlan)
        ('PruningPlan', 1, True)
    """

    def __new__(  # type: ignore[misc]
        cls, steps: Sequence[PruningPlan] | None = None, meta: dict[str, Any] | None = None
    ) -> PruningPlan:
        warnings.warn(
            "prunekit.schedule.SchedulePlan is deprecated: a plan of several steps is a "
            "PruningPlan(steps=[...], meta=...) (same JSON, same replay)",
            DeprecationWarning,
            stacklevel=2,
        )
        return PruningPlan(steps=list(steps or []), meta=meta)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> PruningPlan:
        """A step-list plan from ``{"schedule": [...], "meta": ...}``."""
        if not isinstance(data, dict) or not isinstance(data.get("schedule"), list):
            raise PlanError(
                "a schedule plan dict needs a 'schedule' list of step plans; got "
                f"{sorted(data) if isinstance(data, dict) else type(data).__name__}"
            )
        return PruningPlan.from_dict(data)

    @staticmethod
    def from_json(text_or_path: Any) -> PruningPlan:
        """A plan from JSON text or a file (one step or several)."""
        return PruningPlan.from_json(text_or_path)
