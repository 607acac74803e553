"""Schedules: when to cut (one-shot, iterative ramps, hierarchical), with replayable plans.

A schedule says what each step reaches (:class:`Step`); one loop (:func:`drive`, run by
:meth:`prunekit.Pruner.run` and by weight-level pruning) cuts them. Reachable from
:func:`prunekit.prune` by name (``schedule="iterative"``, see :func:`get_schedule`) or as an
object; ``schedule.run(pruner)`` runs one on a :class:`prunekit.Pruner` directly. The result
is a :class:`prunekit.PruneResult` (``ScheduleResult`` is its deprecated name), its plan a
:class:`prunekit.PruningPlan` of several steps (``SchedulePlan`` is deprecated).
"""

import warnings
from typing import Any

from .plan import SchedulePlan
from .registry import (
    Schedule,
    ScheduleFactory,
    available_schedules,
    build_schedule,
    get_schedule,
    register_schedule,
    run_schedule,
)
from .schedules import Callback, Hierarchical, Iterative, OneShot, ramp
from .steps import Step, drive, step_spec

__all__ = [
    "Callback",
    "Hierarchical",
    "Iterative",
    "OneShot",
    "Schedule",
    "ScheduleFactory",
    "SchedulePlan",
    "ScheduleResult",
    "Step",
    "available_schedules",
    "build_schedule",
    "drive",
    "get_schedule",
    "ramp",
    "register_schedule",
    "run_schedule",
    "step_spec",
]


def __getattr__(name: str) -> Any:
    if name == "ScheduleResult":
        from ..result import PruneResult

        warnings.warn(
            "prunekit.schedule.ScheduleResult is deprecated: prune() returns a "
            "prunekit.PruneResult for one step and for a schedule (result.steps)",
            DeprecationWarning,
            stacklevel=2,
        )
        return PruneResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
