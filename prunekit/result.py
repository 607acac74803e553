"""What a prune returns: the pruned model, its plan, and the cost summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .cost import CostReport, measure_cost
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
    """Params and MACs before/after and each group's width before/after."""

    before: CostReport
    after: CostReport
    widths: list[tuple[str, int, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "widths": [list(w) for w in self.widths],
        }

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
        return "\n".join(lines)


@dataclass
class PruneResult:
    """What :func:`prune` returns: the pruned model, the plan, and the cost summary.

    Costs are measured lazily (MAC counting runs the model), so ``prune`` itself only pays
    for analysis and surgery. With ``inplace=True`` the "before" cost is measured eagerly.
    """

    model: nn.Module
    plan: PruningPlan
    graph: DependencyGraph
    example_inputs: Any = field(repr=False, default=None)
    reference: nn.Module | None = field(repr=False, default=None)
    _before: CostReport | None = field(repr=False, default=None)
    _after: CostReport | None = field(repr=False, default=None)

    @property
    def before(self) -> CostReport:
        """Params and MACs of the unpruned model."""
        if self._before is None:
            assert self.reference is not None
            self._before = measure_untouched(self.reference, self.example_inputs)
        return self._before

    @property
    def after(self) -> CostReport:
        """Params and MACs of the pruned model."""
        if self._after is None:
            self._after = measure_cost(self.model, self.example_inputs)
        return self._after

    def summary(self) -> PruneSummary:
        widths = [
            (g.key, g.num_units, g.num_units - len(self.plan.removed.get(g.key, [])))
            for g in self.graph.groups
        ]
        return PruneSummary(self.before, self.after, widths)
