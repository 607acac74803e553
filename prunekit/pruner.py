"""Orchestration: analyse -> score -> allocate -> cut, atomically."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .allocation import (
    SCOPES,
    AllocationSpec,
    BudgetReport,
    allocate,
    resolve_target,
    search_budget,
    select_units,
)
from .analysis import analyze
from .errors import ConfigError, NothingToPruneError, PrunekitError
from .evaluation.cost import CostReport, count_macs, count_params, measure_cost
from .graph.dependency import DependencyGraph, Group
from .graph.tracer import call_model, eval_mode, flatten_tensors
from .importance import Importance, get_importance
from .plan import PruningPlan
from .surgery import get_handler

__all__ = ["prune", "Pruner", "PruneResult", "PruneSummary"]


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
            self._before = measure_cost(self.reference, self.example_inputs)
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


def _validate(ratio: float, scope: str, round_to: int) -> None:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise ConfigError(f"ratio={ratio!r} is not a number; pass a float in [0, 1), e.g. 0.5")
    if not 0.0 <= float(ratio) < 1.0:
        raise ConfigError(f"ratio={ratio!r} is outside [0, 1); pass the fraction of units to cut")
    if scope not in SCOPES:
        raise ConfigError(f"scope={scope!r} is unknown; use one of {SCOPES}")
    if not isinstance(round_to, int) or round_to < 1:
        raise ConfigError(f"round_to={round_to!r} must be a positive int (e.g. 8)")


def _ignored_names(model: nn.Module, ignore: Any) -> set[str]:
    names = {id(m): n for n, m in model.named_modules()}
    valid = set(names.values())
    out: set[str] = set()
    for item in ignore:
        if isinstance(item, nn.Module):
            if id(item) not in names:
                raise ConfigError(
                    f"ignore contains a {type(item).__name__} that is not a submodule of the "
                    "model; pass modules of this model or their qualified names"
                )
            out.add(names[id(item)])
        elif isinstance(item, str):
            if item not in valid:
                close = [n for n in valid if item.split(".")[-1] in n][:5]
                raise ConfigError(
                    f"ignore names module {item!r}, which is not in the model"
                    + (f"; did you mean one of {close}?" if close else "")
                )
            out.add(item)
        else:
            raise ConfigError(f"ignore items must be modules or names, got {type(item).__name__}")
    return out


def _ignored_group(group: Group, ignored: set[str], modules: dict[str, nn.Module]) -> bool:
    if "" in ignored:  # the root module itself: nothing may be cut
        return True
    for m in group.members:
        mod = m.module
        if mod in ignored or any(mod.startswith(i + ".") for i in ignored if i):
            own = get_handler(modules[mod]).output_dims(modules[mod])
            if own.get(m.tensor) == m.dim:
                return True
    return False


def producer_modules(group: Group, modules: dict[str, nn.Module]) -> list[str]:
    """Modules whose *own* output units are this group's units (as their handler says)."""
    own = [
        m.module
        for m in group.members
        if m.module in modules
        and get_handler(modules[m.module]).output_dims(modules[m.module]).get(m.tensor) == m.dim
    ]
    return sorted(set(own)) or group.modules()


class Pruner:
    """Analyse -> score -> allocate -> cut, one :meth:`step` at a time.

    Each step re-analyses the current (already pruned) model, prepares data-driven criteria
    on it, scores every candidate group, allocates, cuts a copy, and checks that it runs;
    on any failure the current model is unchanged. How much to cut: ``ratio`` (with
    ``scope``), ``module_ratios``, ``threshold`` (score), or one budget: ``target_params`` /
    ``target_macs`` (a count, or a float in (0, 1): the fraction of the unpruned cost to
    keep), met by a binary search on a global threshold with exact trial cuts.

    Attributes:
        model_: the current model (the original until the first step unless ``inplace``).
        plan_: the last step's :class:`PruningPlan`; ``plans_`` holds every step's.
        scores_: the last step's scores, group key -> 1-D tensor.
        graph_: the last step's :class:`DependencyGraph`.
        budget_: the last budget search's :class:`BudgetReport` (or ``None``).

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        >>> pruner = prunekit.Pruner(net, torch.randn(1, 8), target_params=0.5)
        >>> res = pruner.step()
        >>> res.model[0].out_features, pruner.budget_.achieved <= pruner.budget_.target
        (7, True)
    """

    def __init__(
        self,
        model: nn.Module,
        example_inputs: Any,
        *,
        importance: str | Importance = "l2",
        ratio: float | None = None,
        scope: str = "local",
        ignore: Any = (),
        round_to: int = 1,
        module_ratios: dict[str, float] | None = None,
        threshold: float | None = None,
        max_ratio: float = 1.0,
        target_params: float | None = None,
        target_macs: float | None = None,
        inplace: bool = False,
        trace_mode: str = "eval",
    ) -> None:
        if ratio is not None:
            _validate(ratio, scope, round_to)
        self.spec = AllocationSpec(
            ratio, scope, dict(module_ratios or {}), threshold, max_ratio, round_to
        )
        self.targets = {
            k: v for k, v in (("params", target_params), ("macs", target_macs)) if v is not None
        }
        if len(self.targets) > 1 or (self.targets and (ratio is not None or threshold is not None)):
            raise ConfigError(
                "pass one way to size the cut: ratio/module_ratios/threshold, or target_params, "
                f"or target_macs (got ratio={ratio}, threshold={threshold}, targets={self.targets})"
            )
        self.importance = importance
        self.criterion = get_importance(importance)
        self.example_inputs = example_inputs
        self.original = model
        self.ignored = _ignored_names(model, ignore)
        self.inplace = inplace
        self.trace_mode = trace_mode
        self.model_: nn.Module = model
        self.plans_: list[PruningPlan] = []
        self.scores_: dict[str, torch.Tensor] = {}
        self.graph_: DependencyGraph | None = None
        self.budget_: BudgetReport | None = None
        self._baseline: CostReport | None = None

    @property
    def plan_(self) -> PruningPlan | None:
        return self.plans_[-1] if self.plans_ else None

    def _sized(
        self, ratio: float | None, targets: dict[str, float] | None
    ) -> tuple[AllocationSpec, dict[str, float]]:
        spec, tg = self.spec, dict(self.targets if targets is None else targets)
        if ratio is not None:
            _validate(ratio, spec.scope, spec.round_to)
            spec = AllocationSpec(
                ratio, spec.scope, spec.module_ratios, spec.threshold, spec.max_ratio, spec.round_to
            )
            tg = {}
        if not tg and spec.ratio is None and spec.threshold is None and not spec.module_ratios:
            raise ConfigError(
                f"ratio={ratio!r} and nothing else says how much to cut: pass ratio= in [0, 1), "
                "module_ratios=, threshold=, target_params= or target_macs="
            )
        return spec, tg

    def step(
        self,
        ratio: float | None = None,
        *,
        targets: dict[str, float] | None = None,
        only: Any = None,
    ) -> PruneResult:
        """Prune the current model once.

        ``ratio``/``targets`` override the constructor's; ``only`` (group keys) restricts
        this step to those groups (hierarchical schedules).
        """
        spec, tg = self._sized(ratio, targets)
        current = self.model_
        work = copy.deepcopy(current)
        before = (
            measure_cost(work, self.example_inputs) if self.inplace and not self.plans_ else None
        )
        graph = analyze(work, self.example_inputs, trace_mode=self.trace_mode)
        modules = dict(work.named_modules())
        candidates = [
            g
            for g in graph.groups
            if not _ignored_group(g, self.ignored, modules) and (only is None or g.key in only)
        ]
        if not candidates:
            raise NothingToPruneError(
                f"{type(current).__name__} has no prunable group ({len(graph.groups)} groups, all "
                "ignored or frozen); print(prunekit.analyze(model, example_inputs)) shows why"
            )
        prepare = getattr(self.criterion, "prepare", None)
        if callable(prepare):
            prepare(work, graph)
        scores = {g.id: self.criterion(g, graph.tensors).detach().float().cpu() for g in candidates}
        chosen = self._choose(work, graph, candidates, scores, spec, tg, modules)
        plan = self._plan(graph, candidates, chosen, spec, tg)
        plan.apply_to_graph(work, graph)
        _check_runs(work, self.example_inputs, graph.example_output)
        if self.inplace:
            current.__dict__.clear()
            current.__dict__.update(work.__dict__)
            current.__class__ = work.__class__
            work = current
        self.model_, self.graph_ = work, graph
        self.scores_ = {g.key: scores[g.id] for g in candidates}
        self.plans_.append(plan)
        reference = None if self.inplace else current
        return PruneResult(work, plan, graph, self.example_inputs, reference, before)

    def _choose(
        self,
        work: nn.Module,
        graph: DependencyGraph,
        candidates: list[Group],
        scores: dict[int, torch.Tensor],
        spec: AllocationSpec,
        targets: dict[str, float],
        modules: dict[str, nn.Module],
    ) -> dict[int, list[int]]:
        self.budget_ = None
        if targets:
            ((metric, value),) = targets.items()
            target = resolve_target(metric, value, self._baseline_cost(metric))

            def cost(cut: dict[int, list[int]]) -> int:
                trial = copy.deepcopy(work)
                self._plan(graph, candidates, cut, spec, targets).apply_to_graph(trial, graph)
                return self._cost(trial, metric)

            chosen, self.budget_ = search_budget(
                candidates, scores, cost, metric=metric, target=target,
                baseline=self._cost(work, metric), max_ratio=spec.max_ratio, round_to=spec.round_to,
            )  # fmt: skip
            return chosen
        if spec.module_ratios or spec.threshold is not None or spec.max_ratio < 1.0:
            producers = {g.id: producer_modules(g, modules) for g in candidates}
            return allocate(candidates, scores, spec, producers)
        assert spec.ratio is not None
        return select_units(
            candidates, scores, ratio=float(spec.ratio), scope=spec.scope, round_to=spec.round_to
        )

    def _cost(self, model: nn.Module, metric: str) -> int:
        return count_params(model) if metric == "params" else count_macs(model, self.example_inputs)

    def _baseline_cost(self, metric: str) -> int:
        if self._baseline is None:
            self._baseline = measure_cost(
                self.original if not self.plans_ or not self.inplace else self.model_,
                self.example_inputs,
            )
        return self._baseline.params if metric == "params" else self._baseline.macs

    def _plan(
        self,
        graph: DependencyGraph,
        candidates: list[Group],
        chosen: dict[int, list[int]],
        spec: AllocationSpec,
        targets: dict[str, float],
    ) -> PruningPlan:
        imp = self.importance
        meta: dict[str, Any] = {
            "ratio": spec.ratio, "scope": spec.scope, "round_to": spec.round_to,
            "importance": imp if isinstance(imp, str) else type(imp).__name__,
        }  # fmt: skip
        if spec.module_ratios:
            meta["module_ratios"] = dict(spec.module_ratios)
        if spec.threshold is not None:
            meta["threshold"] = float(spec.threshold)
        if spec.max_ratio < 1.0:
            meta["max_ratio"] = spec.max_ratio
        meta.update({f"target_{k}": v for k, v in targets.items()})
        return PruningPlan(
            {g.key: chosen[g.id] for g in candidates if chosen[g.id]},
            {g.key: g.num_units for g in graph.groups},
            meta,
        )


def prune(
    model: nn.Module,
    example_inputs: Any,
    *,
    ratio: float | None = None,
    importance: str | Importance = "l2",
    scope: str = "local",
    ignore: Any = (),
    round_to: int = 1,
    inplace: bool = False,
    module_ratios: dict[str, float] | None = None,
    threshold: float | None = None,
    max_ratio: float = 1.0,
    target_params: float | None = None,
    target_macs: float | None = None,
    trace_mode: str = "eval",
) -> PruneResult:
    """Structurally prune ``model``: remove its lowest-scoring units.

    Args:
        model: the model to prune; untouched unless ``inplace=True``.
        example_inputs: a tensor, a tuple of positional inputs, or a dict of keyword inputs.
        ratio: fraction of units to remove, in [0, 1).
        importance: a criterion name (``"l1"``, ``"l2"``, ``"random"`` ...) or object; an
            object with a ``prepare(model, graph)`` method (data-driven criteria) is prepared
            on the analysed copy first.
        scope: ``"local"`` (same fraction per group) or ``"global"`` (ranked across groups).
        ignore: modules (or qualified names) whose own output units must be kept.
        round_to: kept widths are rounded up to a multiple of this.
        inplace: modify ``model`` itself; on failure it is left as it was.
        module_ratios: per-module ratios by name or glob, e.g. ``{"layer3": 0.6}``.
        threshold: also remove every unit whose score is below this.
        max_ratio: remove at most this fraction of any group.
        target_params: a parameter budget: a count, or a float in (0, 1) (fraction to keep).
        target_macs: a MACs budget, like ``target_params``.
        trace_mode: ``"train"`` traces in train mode, to include branches that only run in
            training (auxiliary heads); default ``"eval"``.

    Returns:
        A :class:`PruneResult` with ``.model``, ``.plan`` and ``.summary()``.

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
        ...                           torch.nn.Conv2d(8, 4, 3))
        >>> res = prunekit.prune(net, torch.randn(1, 3, 8, 8), ratio=0.5)
        >>> res.model[0].out_channels
        4
    """
    pruner = Pruner(
        model, example_inputs, importance=importance, ratio=ratio, scope=scope, ignore=ignore,
        round_to=round_to, module_ratios=module_ratios, threshold=threshold,
        max_ratio=max_ratio, target_params=target_params, target_macs=target_macs,
        inplace=inplace, trace_mode=trace_mode,
    )  # fmt: skip
    return pruner.step()


def _check_runs(model: nn.Module, example_inputs: Any, reference: Any) -> None:
    """The pruned model must run and give outputs of the original shapes."""
    try:
        with torch.no_grad(), eval_mode(model):
            out = call_model(model, example_inputs)
    except Exception as exc:
        raise PrunekitError(
            f"the pruned model failed to run ({type(exc).__name__}: {exc}); the original model "
            "is unchanged. A module probably keeps a size in an attribute the engine does not "
            "know: register a handler for it (prunekit.surgery.register_handler)"
        ) from exc
    got = [tuple(t.shape) for t in flatten_tensors(out)]
    want = [tuple(t.shape) for t in flatten_tensors(reference)]
    if got != want:
        raise PrunekitError(
            f"pruning changed the model's output shapes from {want} to {got}; the original "
            "model is unchanged. Please report this with the model definition"
        )
