"""The schedule registry: ``prune(..., schedule="iterative")`` or a schedule object."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..allocation import validate_ratio
from ..errors import ConfigError, RegistryError
from ..registry import Registry
from .schedules import Callback, Hierarchical, Iterative, OneShot, ScheduleResult

if TYPE_CHECKING:
    from ..pruner import Pruner

__all__ = [
    "Schedule",
    "ScheduleFactory",
    "available_schedules",
    "get_schedule",
    "register_schedule",
    "run_schedule",
]


@runtime_checkable
class Schedule(Protocol):
    """Anything with ``run(pruner) -> ScheduleResult`` (``OneShot``, ``Iterative`` ...)."""

    def run(self, pruner: Pruner) -> ScheduleResult: ...


#: ``factory(ratio, steps, ramp, callback) -> Schedule``; ``steps=None``: the schedule's default.
ScheduleFactory = Callable[[float, "int | None", str, "Callback | None"], Schedule]

_REGISTRY: Registry[ScheduleFactory] = Registry(
    "schedule", "a callable (ratio, steps, ramp, callback) -> Schedule", str.lower
)


def register_schedule(name: str, factory: ScheduleFactory, *, override: bool = False) -> None:
    """Register a schedule factory under ``name`` (a second registration raises).

    Example:
        >>> from prunekit.schedule import Iterative, get_schedule, register_schedule
        >>> register_schedule("ten_steps", lambda r, steps, ramp, cb: Iterative(r, steps=10))
        >>> get_schedule("ten_steps", 0.5).steps
        10
        >>> register_schedule("ten_steps", lambda r, steps, ramp, cb: Iterative(r))
        Traceback (most recent call last):
        ...
        prunekit.errors.RegistryError: schedule 'ten_steps' is already registered; pass override=True to replace it
        >>> _REGISTRY.remove("ten_steps")
    """
    _REGISTRY.register(name, factory, override=override)


def available_schedules() -> list[str]:
    """Names accepted by ``prune(..., schedule=...)``.

    Example:
        >>> available_schedules()
        ['hierarchical', 'iterative', 'oneshot']
    """
    return _REGISTRY.names()


def get_schedule(
    spec: str | Schedule,
    ratio: float | None = None,
    *,
    steps: int | None = None,
    ramp: str = "cubic",
    callback: Callback | None = None,
) -> Schedule:
    """A schedule by name, built for ``ratio``; a schedule object passes through.

    Args:
        spec: ``"oneshot"``, ``"iterative"``, ``"hierarchical"`` (or a registered name),
            or an object with ``run(pruner)``.
        ratio: the final fraction of units to remove (required with a name).
        steps: iterative steps or hierarchical stages (``None``: 4 and 2).
        ramp: ``"linear"`` or ``"cubic"`` (iterative only).
        callback: ``callback(model, step)`` between steps (e.g. a short fine-tune).

    Example:
        >>> get_schedule("iterative", 0.5, steps=3, ramp="linear").ratios()[0]
        0.16666666666666663
        >>> get_schedule("gradual", 0.5)
        Traceback (most recent call last):
        ...
        prunekit.errors.RegistryError: unknown schedule 'gradual'; valid names: hierarchical, iterative, oneshot (or an object with run(pruner))
    """
    if not isinstance(spec, str):
        if not callable(getattr(spec, "run", None)):
            raise RegistryError(
                f"schedule must be a name ({', '.join(available_schedules())}) or an object "
                f"with run(pruner), got {type(spec).__name__}"
            )
        return spec
    factory = _REGISTRY.get(spec, " (or an object with run(pruner))")
    if ratio is None:
        raise ConfigError(
            f"schedule={spec!r} needs ratio= (the final fraction of units to remove, e.g. 0.5)"
        )
    return factory(ratio, steps, ramp, callback)


def _iterative(r: float, steps: int | None, ramp: str, cb: Callback | None) -> Schedule:
    return Iterative(r, steps=4 if steps is None else steps, ramp=ramp, callback=cb)


def _hierarchical(r: float, steps: int | None, ramp: str, cb: Callback | None) -> Schedule:
    return Hierarchical(r, stages=2 if steps is None else steps, callback=cb)


register_schedule("oneshot", lambda r, steps, ramp, cb: OneShot(r))
register_schedule("iterative", _iterative)
register_schedule("hierarchical", _hierarchical)


def run_schedule(
    pruner: Pruner,
    schedule: str | Schedule,
    *,
    ratio: float | None = None,
    steps: int | None = None,
    ramp: str = "cubic",
    callback: Callback | None = None,
    sizing: list[str] | None = None,
) -> ScheduleResult:
    """Build ``schedule`` (by name, for ``ratio``) and run it on ``pruner``.

    ``sizing`` names the other sizing options the caller got (``module_ratios``,
    ``target_macs`` ...): a schedule sizes every step by its own ratio ramp, so any of them
    is an error, as are ``ratio``/``steps``/``callback`` next to a schedule object.

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> out = run_schedule(prunekit.Pruner(net, torch.randn(1, 4)), "iterative", ratio=0.5,
        ...                    steps=2, ramp="linear")
        >>> [p.num_removed for p in out.plan.steps]
        [2, 2]
    """
    if sizing:
        raise ConfigError(
            f"schedule={schedule!r} sizes every step by its ratio ramp; {sizing} cannot be "
            "combined with it: pass ratio= alone (or call Pruner.step yourself)"
        )
    if not isinstance(schedule, str) and (
        ratio is not None or steps is not None or callback is not None
    ):
        raise ConfigError(
            f"schedule={type(schedule).__name__} carries its own ratio, steps and callback: "
            "pass them to it, not to prune() (or pass the schedule by name)"
        )
    sched = get_schedule(schedule, ratio, steps=steps, ramp=ramp, callback=callback)
    if isinstance(schedule, str):
        validate_ratio(ratio, pruner.spec.scope, pruner.spec.round_to)
    return sched.run(pruner)
