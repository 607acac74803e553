"""The one loop: a schedule says *what* each step reaches (a :class:`Step`), this applies it.

A schedule is a list of :class:`Step`: how far along the way to the final target each step
goes (``fraction`` of it, cumulative, of the unpruned model) and which groups it may touch
(``only``). :func:`step_spec` turns the final :class:`~prunekit.spec.CutSpec` and a step
into the spec to cut *now*, on the model the earlier steps left; :func:`drive` runs the
steps with a callback between them. Structured pruning (:meth:`prunekit.Pruner.run`) and
weight-level pruning (``granularity="unstructured"``) both go through :func:`drive`.

How each kind of target is ramped (``f``: the step's fraction, ``p``: the previous one's):

- ``ratio`` ``r``: the step reaches ``s = r f`` of the units of the groups it may touch,
  measured: it cuts ``1 - (1 - s) N0 / N_left`` of what is left;
- ``module_ratios`` / ``group_ratios`` ``v``: nominal per entry, ``1 - (1 - v f) / (1 - v p)``;
- a budget ``v``: a fraction to keep ramps to ``1 - (1 - v) f``, a count to
  ``baseline - (baseline - v) f`` (the last step asks for ``v`` exactly);
- ``threshold``, caps and rounding apply at every step as given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..plan import PruningPlan
from ..spec import CutSpec

__all__ = ["Step", "drive", "step_spec"]


@dataclass(frozen=True)
class Step:
    """One step of a schedule.

    Attributes:
        fraction: how far along to the final target the model is after this step
            (cumulative, in (0, 1]; ``1.0``: the whole target).
        previous: the fraction reached before this step (``0.0`` for the first).
        only: the group keys this step may cut (``None``: every group).
    """

    fraction: float = 1.0
    previous: float = 0.0
    only: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.previous <= self.fraction <= 1.0:
            raise ConfigError(
                f"Step(fraction={self.fraction!r}, previous={self.previous!r}) needs "
                "0 <= previous <= fraction <= 1"
            )


def _per_step(v: float, step: Step) -> float:
    done, target = v * step.previous, v * step.fraction
    return max(0.0, 1.0 - (1.0 - target) / (1.0 - done))


def _measured_ratio(s: float, step: Step, plans: Sequence[PruningPlan]) -> float:
    """The fraction of what is left that brings the cut to ``s`` of the unpruned units (of
    the groups ``step`` may touch)."""
    if not plans:
        return s
    first, last = plans[0], plans[-1]
    keys = [k for k in first.group_sizes if step.only is None or k in step.only]
    total = sum(first.group_sizes[k] for k in keys)
    left = sum(
        last.group_sizes.get(k, first.group_sizes[k]) - len(last.removed.get(k, [])) for k in keys
    )
    return max(0.0, 1.0 - (1.0 - s) * total / max(left, 1))


def _budget(metric: str, v: float, step: Step, baseline: Callable[[str], int]) -> float:
    if step.fraction >= 1.0:
        return v
    if isinstance(v, float) and v < 1.0:
        return 1.0 - (1.0 - v) * step.fraction
    base = baseline(metric)
    return float(max(1, int(base - (base - v) * step.fraction)))


def step_spec(
    final: CutSpec,
    step: Step,
    plans: Sequence[PruningPlan],
    baseline: Callable[[str], int],
) -> CutSpec | None:
    """The spec to cut at ``step``, given the final one and the plans of the steps so far
    (``baseline(metric)``: the unpruned cost, for count budgets); ``None``: nothing to cut.

    Example:
        >>> spec = step_spec(CutSpec(0.5), Step(0.5), [], lambda m: 0)
        >>> spec.ratio
        0.25
        >>> step_spec(CutSpec(target_macs=0.5), Step(0.5), [], lambda m: 100).target_macs
        0.75
        >>> step_spec(CutSpec(0.5), Step(0.0), [], lambda m: 0) is None
        True
    """
    changes: dict[str, Any] = {}
    if final.ratio is not None:
        changes["ratio"] = min(_measured_ratio(final.ratio * step.fraction, step, plans), 0.999999)
    if final.module_ratios:
        changes["module_ratios"] = {k: _per_step(v, step) for k, v in final.module_ratios.items()}
    if final.group_ratios:
        changes["group_ratios"] = {k: _per_step(v, step) for k, v in final.group_ratios.items()}
    for metric, v in final.targets.items():
        changes[f"target_{metric}"] = _budget(metric, v, step, baseline)
    spec = final.replace(**changes)
    nothing = (
        not spec.targets
        and spec.threshold is None
        and not any(spec.module_ratios.values())
        and not any(spec.group_ratios.values())
        and not spec.ratio
    )
    return None if nothing else spec


def drive(
    steps: Sequence[Step],
    apply: Callable[[Step], object],
    between: Callable[[int], object] | None = None,
) -> None:
    """Apply every step in order; ``between(i)`` runs after step ``i`` except the last.

    Example:
        >>> seen = []
        >>> drive([Step(0.5), Step(1.0, 0.5)], lambda s: seen.append(s.fraction), seen.append)
        >>> seen
        [0.5, 0, 1.0]
    """
    for i, step in enumerate(steps):
        apply(step)
        if between is not None and i < len(steps) - 1:
            between(i)
