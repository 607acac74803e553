"""When to cut: one-shot, iterative (linear or cubic ramp), hierarchical (deepest first)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..cost import CostReport
from ..errors import ConfigError
from ..pruner import Pruner, PruneResult
from ..result import PruneSummary
from .plan import SchedulePlan

__all__ = ["Callback", "OneShot", "Iterative", "Hierarchical", "ScheduleResult", "ramp"]

Callback = Callable[[nn.Module, int], object]
_RAMPS = ("linear", "cubic")


@dataclass
class ScheduleResult:
    """The final model, the replayable plan, and every step's :class:`PruneResult`.

    ``before``/``after`` are the costs of the unpruned and the final model, and
    :meth:`summary` reports them with each group's width before the first step and after
    the last, like :meth:`PruneResult.summary` does for one step.
    """

    model: nn.Module
    plan: SchedulePlan
    steps: list[PruneResult] = field(default_factory=list)

    def _ends(self) -> tuple[PruneResult, PruneResult]:
        if not self.steps:
            raise ConfigError("the schedule made no step (every ratio was 0): nothing to report")
        return self.steps[0], self.steps[-1]

    @property
    def before(self) -> CostReport:
        """Params and MACs of the unpruned model."""
        return self._ends()[0].before

    @property
    def after(self) -> CostReport:
        """Params and MACs of the final model."""
        return self._ends()[1].after

    def widths(self) -> list[tuple[str, int, int]]:
        """``(group key, width before the first step, width after the last)`` per group."""
        first = self._ends()[0].plan
        now = dict(first.group_sizes)
        for p in self.plan.steps:
            for key, size in p.group_sizes.items():
                if key in now:
                    now[key] = size - len(p.removed.get(key, []))
        return [(k, first.group_sizes[k], now[k]) for k in first.group_sizes]

    def summary(self) -> PruneSummary:
        """Params, MACs and group widths before the first step and after the last."""
        return PruneSummary(self.before, self.after, self.widths())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: the schedule plan and the summary."""
        return {"plan": self.plan.to_dict(), "summary": self.summary().to_dict()}


def ramp(final: float, steps: int, kind: str = "cubic", initial: float = 0.0) -> list[float]:
    """Cumulative sparsity after each step ``t = 1..T``.

    ``cubic`` is Zhu & Gupta (2017): ``s_t = s_f + (s_i - s_f) (1 - t/T)^3``; ``linear``:
    ``s_t = s_i + (s_f - s_i) t/T``.

    Example:
        >>> [round(s, 4) for s in ramp(0.5, 2, "cubic")]
        [0.4375, 0.5]
        >>> ramp(0.5, 2, "linear")
        [0.25, 0.5]
    """
    if kind not in _RAMPS:
        raise ConfigError(f"ramp={kind!r} is unknown; use one of {_RAMPS}")
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps={steps!r} must be a positive int")
    if not 0.0 <= initial <= final < 1.0:
        raise ConfigError(f"need 0 <= initial ({initial}) <= final ({final}) < 1")
    out = []
    for t in range(1, steps + 1):
        if kind == "cubic":
            out.append(final + (initial - final) * (1.0 - t / steps) ** 3)
        else:
            out.append(initial + (final - initial) * t / steps)
    return out


def _run(
    pruner: Pruner,
    ratios: list[float] | Callable[[int, list[PruneResult]], float],
    callback: Callback | None,
    only: list[set[str] | None],
) -> ScheduleResult:
    results: list[PruneResult] = []
    for i, keys in enumerate(only):
        r = ratios(i, results) if callable(ratios) else ratios[i]
        if r > 0:
            results.append(pruner.step(r, only=keys))
        if callback is not None and i < len(only) - 1:
            callback(pruner.model_, i)
    return ScheduleResult(pruner.model_, SchedulePlan([res.plan for res in results]), results)


@dataclass
class OneShot:
    """Cut ``ratio`` of the units in one step.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.schedule import OneShot
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> OneShot(0.5).run(prunekit.Pruner(net, torch.randn(1, 4))).model[0].out_features
        8
    """

    ratio: float

    def run(self, pruner: Pruner) -> ScheduleResult:
        return _run(pruner, [self.ratio], None, [None])


@dataclass
class Iterative:
    """Reach ``final_ratio`` of the original units in ``steps`` steps along a ramp.

    Each step re-analyses the model and re-estimates the scores (data-driven criteria are
    prepared again), then cuts the fraction of the *remaining* units that brings the total
    to the ramp's cumulative sparsity ``s_t`` (of all units of the analysed groups):
    ``r_t = 1 - (1 - s_t) * N_0 / N_left`` (``ratios()`` gives the nominal values).
    ``callback(model, step)`` runs between steps (e.g. a short fine-tune).

    Example:
        >>> import torch, prunekit
        >>> from prunekit.schedule import Iterative
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> seen = []
        >>> out = Iterative(0.5, steps=4, ramp="linear",
        ...                 callback=lambda m, t: seen.append(m[0].out_features)).run(
        ...     prunekit.Pruner(net, torch.randn(1, 4)))
        >>> seen, out.model[0].out_features
        ([14, 12, 10], 8)
    """

    final_ratio: float
    steps: int = 4
    ramp: str = "cubic"
    callback: Callback | None = None
    initial: float = 0.0

    def ratios(self) -> list[float]:
        """The per-step ratios (of the units left before each step)."""
        cum = ramp(self.final_ratio, self.steps, self.ramp, self.initial)
        prev, out = 0.0, []
        for s in cum:
            out.append(1.0 - (1.0 - s) / (1.0 - prev))
            prev = s
        return out

    def run(self, pruner: Pruner) -> ScheduleResult:
        cum = ramp(self.final_ratio, self.steps, self.ramp, self.initial)

        def ratio(t: int, done: list[PruneResult]) -> float:
            if not done:
                return cum[t]
            first, last = done[0].plan, done[-1].plan
            total = sum(first.group_sizes[k] for k in first.group_sizes)
            left = sum(last.group_sizes.values()) - last.num_removed
            return max(0.0, 1.0 - (1.0 - cum[t]) * total / max(left, 1))

        return _run(pruner, ratio, self.callback, [None] * self.steps)


@dataclass
class Hierarchical:
    """Deepest groups first, moving toward the input, one stage at a time.

    The groups (in the order the graph lists them, inputs first) are split into ``stages``
    chunks; stage 1 cuts ``ratio`` of the deepest chunk's units, stage 2 the next one, and so
    on, re-analysing and re-scoring before each stage; ``callback`` runs between stages.

    Example:
        >>> import torch, prunekit
        >>> from prunekit.schedule import Hierarchical
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
        ...                           torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> out = Hierarchical(0.5, stages=2).run(prunekit.Pruner(net, torch.randn(1, 4)))
        >>> [list(p.removed) for p in out.plan.steps]
        [['2.weight:0'], ['0.weight:0']]
    """

    ratio: float
    stages: int = 2
    callback: Callback | None = None

    def run(self, pruner: Pruner) -> ScheduleResult:
        from ..analysis import analyze

        if not isinstance(self.stages, int) or self.stages < 1:
            raise ConfigError(f"stages={self.stages!r} must be a positive int")
        keys = [g.key for g in analyze(pruner.model_, pruner.example_inputs).groups]
        n = max(1, min(self.stages, len(keys)))
        chunks = [keys[i * len(keys) // n : (i + 1) * len(keys) // n] for i in range(n)]
        only: list[set[str] | None] = [set(c) for c in reversed(chunks)]
        return _run(pruner, [self.ratio] * n, self.callback, only)
