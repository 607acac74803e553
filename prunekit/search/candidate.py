"""Build one search candidate: cut a copy (in one or several steps) and finish each step.

"Finishing" a step is the user's ``after_cut`` then ``recover``; it runs after every cut,
so a multi-step schedule is cut -> finish -> cut -> finish ... Every random draw is seeded:
the cut from ``seed``, the finishing of step ``t = 1, 2, ...`` from ``seed + t``, so
replaying the recorded plans (which draws nothing while cutting) rebuilds the same model.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..api import prune
from ..plan import PruningPlan
from ..schedule import Iterative, Step, step_spec
from ..spec import CutSpec
from .spec import Strategy

__all__ = [
    "Cut",
    "Finish",
    "cut_at_ratio",
    "cut_to_target",
    "plan_signature",
    "replay",
    "seeded",
    "step_fraction",
]

Finish = Callable[[nn.Module, int], nn.Module]
"""``finish(model, step) -> model``: ``after_cut`` and recover after the cut of ``step``."""
Known = Callable[[str], bool]
"""``known(signature)``: whether a one-step cut with this plan signature was measured."""


@dataclass
class Cut:
    """A candidate: the model, one plan per step, and whether it was finished.

    A one-step cut whose plan is already ``known`` is returned unfinished (its finished
    twin was measured: finishing is seeded, so it would come out the same).
    """

    model: nn.Module
    plans: list[PruningPlan]
    finished: bool = True

    @property
    def signature(self) -> str:
        return plan_signature(self.plans)

    @property
    def ratio(self) -> float:
        """Fraction of the unpruned model's units (of its analysed groups) removed."""
        return removed_fraction(self.plans)


def removed_fraction(plans: list[PruningPlan]) -> float:
    """``1 - units left / units before`` over a sequence of step plans.

    Example:
        >>> a = PruningPlan({"g": [0, 1]}, {"g": 8})
        >>> b = PruningPlan({"g": [0, 1]}, {"g": 6})
        >>> removed_fraction([a]), removed_fraction([a, b])
        (0.25, 0.5)
    """
    if not plans:
        return 0.0
    before = sum(plans[0].group_sizes.values())
    left = sum(plans[-1].group_sizes.values()) - plans[-1].num_removed
    return 1.0 - left / before if before else 0.0


def plan_signature(plans: list[PruningPlan]) -> str:
    """A digest of the units each step removes (equal cuts, equal signatures).

    Example:
        >>> a = PruningPlan({"g": [0, 1], "h": []}, {"g": 8, "h": 4})
        >>> plan_signature([a]) == plan_signature([PruningPlan({"g": [0, 1]}, {"g": 8})])
        True
    """
    steps = [{k: sorted(v) for k, v in sorted(p.removed.items()) if v} for p in plans]
    return hashlib.sha256(json.dumps(steps).encode()).hexdigest()[:32]


def reseed(seed: int) -> None:
    """Seed torch, ``random`` and numpy."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run seeded; the caller's random states (torch, ``random``, numpy) are restored after.

    Example:
        >>> with seeded(3):
        ...     a = torch.rand(1)
        >>> with seeded(3):
        ...     b = torch.rand(1)
        >>> bool(a == b)
        True
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        reseed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def step_fraction(final: float, step: int, steps: int) -> float:
    """The fraction of the *remaining* units step ``step`` (1-based) cuts, so that the
    cumulative cut grows linearly to ``final`` over ``steps`` steps (how a schedule ramps a
    per-group ratio, :func:`prunekit.schedule.step_spec`).

    Example:
        >>> [round(step_fraction(0.5, t, 2), 6) for t in (1, 2)]  # 25% of all, then 1/3 of 75%
        [0.25, 0.333333]
    """
    spec = step_spec(CutSpec(group_ratios={"g": final}), Step(step / steps, (step - 1) / steps),
                     [], lambda metric: 0)  # fmt: skip
    return spec.group_ratios["g"] if spec is not None else 0.0


def _steps(
    model: nn.Module,
    example_inputs: Any,
    spec: CutSpec,
    strategy: Strategy,
    *,
    ignore: list[str],
    steps: int,
    finish: Finish,
    seed: int,
    known: Known | None,
    bn_data: Any = None,
) -> Cut:
    """Cut ``spec`` in ``steps`` linear steps (one schedule run), finishing after each
    (``bn_data``: as for :func:`prunekit.prune`; ``False`` when the finishing re-estimates)."""

    def between(m: nn.Module, i: int) -> nn.Module:
        reseed(seed + i + 1)
        return finish(m, i + 1)

    schedule = Iterative(steps=steps, ramp="linear", callback=between) if steps > 1 else None
    res = prune(model, example_inputs, importance=strategy.importance, ignore=ignore, spec=spec,
                schedule=schedule, bn_data=bn_data)  # fmt: skip
    plans = res.plan.steps
    if steps == 1 and known is not None and known(plan_signature(plans)):
        return Cut(res.model, plans, finished=False)
    reseed(seed + steps)
    return Cut(finish(res.model, steps), plans)


def cut_at_ratio(
    model: nn.Module,
    example_inputs: Any,
    strategy: Strategy,
    ratio: float,
    *,
    ignore: list[str],
    steps: int,
    finish: Finish,
    seed: int,
    known: Known | None = None,
    bn_data: Any = None,
) -> Cut:
    """Cut ``ratio`` of the units the strategy's way, in ``steps`` linear steps (seeded).

    ``model`` is not modified; a one-step cut whose signature is ``known`` is not finished.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
        >>> cut = cut_at_ratio(net, torch.randn(1, 4), Strategy(scope="local"), 0.5, ignore=[],
        ...                    steps=2, finish=lambda m, t: m, seed=0)
        >>> cut.model[0].out_features, [p.num_removed for p in cut.plans], cut.ratio
        (8, [4, 4], 0.5)
    """
    with seeded(seed):
        return _steps(model, example_inputs, strategy.spec(ratio), strategy, ignore=ignore,
                      steps=steps, finish=finish, seed=seed, known=known,
                      bn_data=bn_data)  # fmt: skip


def cut_to_target(
    model: nn.Module,
    example_inputs: Any,
    strategy: Strategy,
    metric: str,
    target: int,
    baseline: int,
    *,
    ignore: list[str],
    steps: int,
    finish: Finish,
    seed: int,
    known: Known | None = None,
    bn_data: Any = None,
) -> Cut:
    """Cut to at most ``target`` params or MACs with ``prune``'s budget search (global ranking).

    With several steps the absolute target falls linearly from the unpruned cost to
    ``target`` (``baseline``: that cost, as the search measured it).

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
        >>> cut = cut_to_target(net, torch.randn(1, 4), Strategy(), "params", 60, 114,
        ...                     ignore=[], steps=1, finish=lambda m, t: m, seed=0)
        >>> sum(p.numel() for p in cut.model.parameters()) <= 60
        True
    """
    spec = strategy.spec(None).replace(**{f"target_{metric}": target})
    with seeded(seed):
        return _steps(model, example_inputs, spec, strategy, ignore=ignore, steps=steps,
                      finish=finish, seed=seed, known=known, bn_data=bn_data)  # fmt: skip


def replay(
    model: nn.Module, example_inputs: Any, plans: list[PruningPlan], *, finish: Finish, seed: int
) -> nn.Module:
    """Rebuild a candidate from its recorded step plans, finishing each step as the search did.

    Example:
        >>> net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
        >>> x = torch.randn(1, 4)
        >>> cut = cut_at_ratio(net, x, Strategy(), 0.5, ignore=[], steps=1,
        ...                    finish=lambda m, t: m, seed=0)
        >>> again = replay(net, x, cut.plans, finish=lambda m, t: m, seed=0)
        >>> torch.equal(again[0].weight, cut.model[0].weight)
        True
    """
    current = copy.deepcopy(model)
    with seeded(seed):
        for t, plan in enumerate(plans, start=1):
            current = plan.apply(current, example_inputs, inplace=True)
            reseed(seed + t)
            current = finish(current, t)
    return current
