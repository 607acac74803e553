"""Learning-rate schedules for fine-tuning: a registry of ``progress -> multiplier`` curves.

A schedule maps training progress ``t`` in ``[0, 1)`` (after the warm-up) to a multiplier of
each parameter group's base learning rate. Built-ins:

- ``"constant"``: 1.
- ``"cosine"``: ``0.5 * (1 + cos(pi * t))``, from 1 down towards 0.
- ``"step"``: 1, then 0.1 from ``t = 0.5``, then 0.01 from ``t = 0.75``.
- ``"onecycle"``: the one-cycle policy (Smith 2018, as :class:`torch.optim.lr_scheduler.OneCycleLR`
  with cosine annealing): a rise from 1/25 to 1 over the first 30 %, then a fall to 1/25e4.
  It has its own warm-up, so it takes no separate ``warmup``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..errors import ConfigError, RegistryError

__all__ = [
    "ScheduleFn",
    "available_lr_schedules",
    "get_lr_schedule",
    "lr_factor",
    "register_lr_schedule",
]

ScheduleFn = Callable[[float], float]
"""``schedule(progress) -> multiplier`` with progress in ``[0, 1)``."""

_ONECYCLE_RISE = 0.3
_ONECYCLE_START = 1.0 / 25.0
_ONECYCLE_END = _ONECYCLE_START / 1e4


def _cosine(t: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * t))


def _step(t: float) -> float:
    return 0.1 ** sum(t >= m for m in (0.5, 0.75))


def _onecycle(t: float) -> float:
    if t < _ONECYCLE_RISE:
        return _ONECYCLE_START + (1.0 - _ONECYCLE_START) * (1.0 - _cosine(t / _ONECYCLE_RISE))
    fall = (t - _ONECYCLE_RISE) / (1.0 - _ONECYCLE_RISE)
    return _ONECYCLE_END + (1.0 - _ONECYCLE_END) * _cosine(fall)


_SCHEDULES: dict[str, ScheduleFn] = {
    "constant": lambda t: 1.0,
    "cosine": _cosine,
    "step": _step,
    "onecycle": _onecycle,
}
_OWN_WARMUP = {"onecycle"}


def register_lr_schedule(name: str, schedule: ScheduleFn) -> None:
    """Add a schedule under ``name`` (usable as ``finetune(..., lr_schedule=name)``).

    Raises:
        RegistryError: ``name`` is taken.

    Example:
        >>> register_lr_schedule("linear_decay_doc", lambda t: 1.0 - t)
        >>> get_lr_schedule("linear_decay_doc")(0.25)
        0.75
    """
    if name in _SCHEDULES:
        raise RegistryError(
            f"lr schedule {name!r} is already registered; pick another name (taken: "
            f"{available_lr_schedules()})"
        )
    if not callable(schedule):
        raise ConfigError(f"lr schedule {name!r} must be callable progress -> multiplier")
    _SCHEDULES[name] = schedule


def available_lr_schedules() -> list[str]:
    """The registered schedule names, sorted.

    Example:
        >>> {"constant", "cosine", "onecycle", "step"} <= set(available_lr_schedules())
        True
    """
    return sorted(_SCHEDULES)


def get_lr_schedule(name: str) -> ScheduleFn:
    """The schedule registered as ``name``.

    Raises:
        RegistryError: ``name`` is unknown; the message lists the valid names.

    Example:
        >>> get_lr_schedule("step")(0.6)
        0.1
    """
    try:
        return _SCHEDULES[name]
    except (KeyError, TypeError):
        raise RegistryError(
            f"lr_schedule={name!r} is unknown; use one of {available_lr_schedules()} or register "
            "one with prunekit.recovery.register_lr_schedule(name, fn)"
        ) from None


def lr_factor(step: int, total: int, *, schedule: str = "cosine", warmup: int = 0) -> float:
    """The learning-rate multiplier for optimizer step ``step`` (0-based) of ``total``.

    The first ``warmup`` steps ramp linearly, ``(step + 1) / warmup``; the schedule then runs
    over the remaining steps with progress ``(step - warmup) / (total - warmup)``.

    Raises:
        ConfigError: ``warmup`` is negative, or given with ``"onecycle"`` (which has its own).

    Example:
        >>> lr_factor(0, 10, schedule="constant", warmup=4), lr_factor(6, 10, warmup=2)
        (0.25, 0.5)
    """
    fn = get_lr_schedule(schedule)
    if warmup < 0:
        raise ConfigError(f"warmup={warmup} steps is negative; pass 0 or more")
    if warmup and schedule in _OWN_WARMUP:
        raise ConfigError(
            f"lr_schedule={schedule!r} has its own warm-up (the first 30 % of steps); pass warmup=0"
        )
    if step < warmup:
        return (step + 1) / warmup
    return float(fn((step - warmup) / max(total - warmup, 1)))
