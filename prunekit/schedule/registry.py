"""The schedule registry: ``prune(..., schedule="iterative")`` or a schedule object."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from torch import nn

from ..errors import ConfigError, RegistryError
from ..registry import Registry
from .schedules import Callback, Hierarchical, Iterative, OneShot, Runner
from .steps import Step

if TYPE_CHECKING:
    from ..result import PruneResult

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
    """What a schedule is: ``steps_for(model, example_inputs) -> [Step, ...]`` says what
    each step reaches (``OneShot``, ``Iterative``, ``Hierarchical``); the pruner cuts them.
    Optional attributes: ``ratio`` (a final ratio the schedule carries) and ``callback``.
    An object with only ``run(pruner)`` (the older protocol) is still accepted."""

    def steps_for(self, model: nn.Module, example_inputs: Any) -> list[Step]: ...


#: ``factory(ratio, steps, ramp, callback) -> Schedule``; ``steps=None``: the schedule's
#: default; ``ratio=None``: the schedule ramps the pruner's own spec.
ScheduleFactory = Callable[["float | None", "int | None", str, "Callback | None"], Schedule]

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
    if ratio is None and isinstance(spec, str):
        _REGISTRY.get(spec, " (or an object with run(pruner))")
        raise ConfigError(
            f"schedule={spec!r} needs ratio= (the final fraction of units to remove, e.g. 0.5)"
        )
    return build_schedule(spec, ratio, steps=steps, ramp=ramp, callback=callback)


def build_schedule(
    spec: str | Schedule,
    ratio: float | None,
    *,
    steps: int | None = None,
    ramp: str = "cubic",
    callback: Callback | None = None,
) -> Schedule:
    """Like :func:`get_schedule`, but ``ratio=None`` is allowed: the schedule then ramps the
    pruner's own spec (a ratio, per-module/per-group ratios or a budget)."""
    if not isinstance(spec, str):
        if not callable(getattr(spec, "steps_for", None)) and not callable(
            getattr(spec, "run", None)
        ):
            raise RegistryError(
                f"schedule must be a name ({', '.join(available_schedules())}) or an object "
                f"with steps_for(model, inputs) or run(pruner), got {type(spec).__name__}"
            )
        return spec
    factory = _REGISTRY.get(spec, " (or an object with run(pruner))")
    return factory(ratio, steps, ramp, callback)


def _iterative(r: float | None, steps: int | None, ramp: str, cb: Callback | None) -> Schedule:
    return Iterative(r, steps=4 if steps is None else steps, ramp=ramp, callback=cb)


def _hierarchical(r: float | None, steps: int | None, ramp: str, cb: Callback | None) -> Schedule:
    return Hierarchical(r, stages=2 if steps is None else steps, callback=cb)


register_schedule("oneshot", lambda r, steps, ramp, cb: OneShot(r))
register_schedule("iterative", _iterative)
register_schedule("hierarchical", _hierarchical)


def run_schedule(
    pruner: Runner,
    schedule: str | Schedule,
    *,
    ratio: float | None = None,
    steps: int | None = None,
    ramp: str = "cubic",
    callback: Callback | None = None,
    sized: bool = False,
) -> PruneResult:
    """Build ``schedule`` (by name) and run it on ``pruner`` (a :class:`prunekit.Pruner`).

    A named schedule ramps ``ratio`` or, without one, the pruner's own spec (``sized``:
    whether it says how much to cut, e.g. ``target_macs``); a schedule object carries its
    own steps and callback (and maybe ratio), so ``steps``/``callback`` next to it are an
    error, as is a sizing keyword next to an object with its own ratio.

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> out = run_schedule(prunekit.Pruner(net, torch.randn(1, 4)), "iterative", ratio=0.5,
        ...                    steps=2, ramp="linear")
        >>> [p.num_removed for p in out.plan.steps]
        [2, 2]
    """
    if not isinstance(schedule, str):
        own = getattr(schedule, "ratio", None) is not None
        if steps is not None or callback is not None or (own and (ratio is not None or sized)):
            raise ConfigError(
                f"schedule={type(schedule).__name__} carries its own ratio, steps and callback: "
                "pass them to it, not to prune() (or pass the schedule by name)"
            )
    elif ratio is None and not sized:
        get_schedule(schedule)  # raises: a named schedule needs something to ramp
    sched = build_schedule(schedule, ratio, steps=steps, ramp=ramp, callback=callback)
    return pruner.run(sched, callback=callback)  # type: ignore[no-any-return]
