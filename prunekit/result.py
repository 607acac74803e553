"""What a prune returns: the pruned model, its plan, and the cost summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .cost import CostReport, measure_cost
from .errors import ConfigError
from .graph.dependency import DependencyGraph
from .plan import PruningPlan
from .surgery.apply import light_copy, own_written

__all__ = ["PruneResult", "PruneSummary", "measure_untouched"]


def measure_untouched(model: nn.Module, example_inputs: Any) -> CostReport:
    """:func:`~prunekit.cost.measure_cost` run on a copy: counting MACs runs the
    forward, which may write the model's buffers or parameters."""
    work = light_copy(model)
    with own_written(work):
        return measure_cost(work, example_inputs)


@dataclass
class PruneSummary:
    """Params and MACs before/after, each group's width before/after, and the keys of the
    model-wide residual streams the cut left out (``streams="keep"``)."""

    before: CostReport
    after: CostReport
    widths: list[tuple[str, int, int]] = field(default_factory=list)
    streams_kept: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "widths": [list(w) for w in self.widths],
        }
        if self.streams_kept:
            out["streams_kept"] = list(self.streams_kept)
        return out

    def __str__(self) -> str:
        def ratio(a: int, b: int) -> str:
            return f"{b / a:.3f}x" if a else "-"

        b, a = self.before, self.after
        lines = [
            f"{'':10}{'before':>14}{'after':>14}{'ratio':>9}",
            f"{'params':10}{b.params:>14,}{a.params:>14,}{ratio(b.params, a.params):>9}",
            f"{'MACs':10}{b.macs:>14,}{a.macs:>14,}{ratio(b.macs, a.macs):>9}",
            "group widths:",
        ]
        lines.extend(f"  {key:48} {w0:>6} -> {w1:<6}" for key, w0, w1 in self.widths)
        if self.streams_kept:
            lines.append(
                f"left out (model-wide residual stream; streams='prune' cuts it): "
                f"{', '.join(self.streams_kept)}"
            )
        return "\n".join(lines)


@dataclass
class PruneResult:
    """What :func:`prune` returns: the pruned model, the plan, and the cost summary.

    One type for one step and for a schedule's several: :attr:`steps` holds each step's
    own result (``[self]`` for one step), :attr:`plan` the replayable plan (a step list
    after a schedule, see :class:`~prunekit.plan.PruningPlan`), and :meth:`summary` the
    costs and group widths before the first step and after the last. Costs are measured
    lazily (MAC counting runs the model), so ``prune`` itself only pays for analysis and
    surgery. With ``inplace=True`` the "before" cost is measured eagerly.
    """

    model: nn.Module
    plan: PruningPlan
    graph: DependencyGraph | None = None
    example_inputs: Any = field(repr=False, default=None)
    reference: nn.Module | None = field(repr=False, default=None)
    _before: CostReport | None = field(repr=False, default=None)
    _after: CostReport | None = field(repr=False, default=None)
    _steps: list[PruneResult] | None = field(repr=False, default=None)

    @classmethod
    def of_steps(
        cls, model: nn.Module, results: list[PruneResult], meta: dict[str, Any] | None = None
    ) -> PruneResult:
        """The result of several steps (``results``, in order) that left ``model``."""
        plan = PruningPlan(steps=[r.plan for r in results], meta=meta)
        last = results[-1] if results else None
        return cls(
            model, plan, last.graph if last else None,
            last.example_inputs if last else None, None, None, None, list(results),
        )  # fmt: skip

    @property
    def steps(self) -> list[PruneResult]:
        """Each step's result, in order (``[self]`` for one step)."""
        return list(self._steps) if self._steps is not None else [self]

    def _ends(self) -> tuple[PruneResult, PruneResult]:
        steps = self.steps
        if not steps:
            raise ConfigError("the schedule made no step (every ratio was 0): nothing to report")
        return steps[0], steps[-1]

    @property
    def before(self) -> CostReport:
        """Params and MACs of the unpruned model."""
        if self._steps is not None:
            return self._ends()[0].before
        if self._before is None:
            assert self.reference is not None
            self._before = measure_untouched(self.reference, self.example_inputs)
        return self._before

    @property
    def after(self) -> CostReport:
        """Params and MACs of the pruned model."""
        if self._steps is not None:
            return self._ends()[1].after
        if self._after is None:
            self._after = measure_cost(self.model, self.example_inputs)
        return self._after

    def widths(self) -> list[tuple[str, int, int]]:
        """``(group key, width before the first step, width after the last)`` per group."""
        if self._steps is None:
            assert self.graph is not None
            return [
                (g.key, g.num_units, g.num_units - len(self.plan.removed.get(g.key, [])))
                for g in self.graph.groups
            ]
        first = self._ends()[0].plan
        now = dict(first.group_sizes)
        for p in self.plan.steps:
            for key, size in p.group_sizes.items():
                if key in now:
                    now[key] = size - len(p.removed.get(key, []))
        return [(k, first.group_sizes[k], now[k]) for k in first.group_sizes]

    def summary(self) -> PruneSummary:
        """Params, MACs and group widths before (the first step) and after (the last), and
        the model-wide residual streams the cut left out (see ``streams=``)."""
        kept = sorted({k for p in self.plan.steps for k in p.meta.get("streams_kept", [])})
        return PruneSummary(self.before, self.after, self.widths(), kept)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: the plan and the summary."""
        return {"plan": self.plan.to_dict(), "summary": self.summary().to_dict()}
