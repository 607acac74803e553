"""Schedules: when to cut (one-shot, iterative ramps, hierarchical), with replayable plans."""

from .plan import SchedulePlan
from .schedules import Callback, Hierarchical, Iterative, OneShot, ScheduleResult, ramp

__all__ = [
    "Callback",
    "Hierarchical",
    "Iterative",
    "OneShot",
    "SchedulePlan",
    "ScheduleResult",
    "ramp",
]
