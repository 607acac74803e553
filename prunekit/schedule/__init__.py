"""Schedules: when to cut (one-shot, iterative ramps, hierarchical), with replayable plans.

Reachable from :func:`prunekit.prune` by name (``schedule="iterative"``, see
:func:`get_schedule`) or as an object; ``schedule.run(pruner)`` runs one on a
:class:`prunekit.Pruner` directly.
"""

from .plan import SchedulePlan
from .registry import (
    Schedule,
    ScheduleFactory,
    available_schedules,
    get_schedule,
    register_schedule,
    run_schedule,
)
from .schedules import Callback, Hierarchical, Iterative, OneShot, ScheduleResult, ramp

__all__ = [
    "Callback",
    "Hierarchical",
    "Iterative",
    "OneShot",
    "Schedule",
    "ScheduleFactory",
    "SchedulePlan",
    "ScheduleResult",
    "available_schedules",
    "get_schedule",
    "ramp",
    "register_schedule",
    "run_schedule",
]
