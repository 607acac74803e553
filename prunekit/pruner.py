"""Orchestration: analyse -> score -> allocate -> cut, atomically."""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

import torch
from torch import nn

from .allocation import (
    AllocationSpec,
    BudgetReport,
    allocate,
    check_group_keys,
    resolve_target,
    search_budget,
    select_units,
    validate_ratio,
)
from .allocation.candidates import ignored_names, is_ignored, producer_modules
from .analysis import analyze
from .errors import ConfigError, NothingToPruneError
from .evaluation.cost import CostReport, count_macs, count_params, measure_cost
from .graph.dependency import DependencyGraph, Group
from .importance import Importance, get_importance
from .plan import PruningPlan, record_step
from .result import PruneResult, PruneSummary
from .sparsity.weight_level import WeightPruneResult, is_weight_level, prune_weight_level
from .verify import check_runs, check_verify, verified_cut

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .schedule import Callback, Schedule, ScheduleResult


def _run_schedule(pruner: Pruner, schedule: str | Schedule, **kwargs: Any) -> ScheduleResult:
    """Run ``schedule`` on ``pruner`` (see :func:`prunekit.schedule.run_schedule`)."""
    from .schedule import run_schedule as run

    return run(pruner, schedule, **kwargs)


__all__ = ["prune", "Pruner", "PruneResult", "PruneSummary"]


class Pruner:
    """Analyse -> score -> allocate -> cut, one :meth:`step` at a time.

    Each step re-analyses the current (already pruned) model, prepares data-driven criteria
    on it, scores every candidate group, allocates, cuts a copy, and checks that it runs;
    on any failure the current model is unchanged. How much to cut: ``ratio`` (with
    ``scope``), ``module_ratios``, ``group_ratios`` (by group key, e.g. from a sensitivity
    analysis), ``threshold`` (score), or one budget: ``target_params`` /
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
        group_ratios: dict[str, float] | None = None,
        verify: str = "exact",
    ) -> None:
        if ratio is not None:
            validate_ratio(ratio, scope, round_to)
        self.spec = AllocationSpec(
            ratio, scope, dict(module_ratios or {}), threshold, max_ratio, round_to,
            dict(group_ratios or {}),
        )  # fmt: skip
        self.targets = {
            k: v for k, v in (("params", target_params), ("macs", target_macs)) if v is not None
        }
        sized = ratio is not None or threshold is not None or bool(group_ratios)
        if len(self.targets) > 1 or (self.targets and sized):
            raise ConfigError(
                "pass one way to size the cut: ratio/module_ratios/group_ratios/threshold, or "
                f"target_params, or target_macs (got ratio={ratio}, threshold={threshold}, "
                f"group_ratios={group_ratios}, targets={self.targets})"
            )
        self.importance = importance
        self.criterion = get_importance(importance)
        self.example_inputs = example_inputs
        self.original = model
        self.ignored = ignored_names(model, ignore)
        self.inplace = inplace
        self.trace_mode = trace_mode
        self.verify = check_verify(verify)
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
            validate_ratio(ratio, spec.scope, spec.round_to)
            spec = dataclasses.replace(spec, ratio=ratio)
            tg = {}
        sized = spec.ratio is not None or spec.threshold is not None
        if not tg and not sized and not spec.module_ratios and not spec.group_ratios:
            raise ConfigError(
                f"ratio={ratio!r} and nothing else says how much to cut: pass ratio= in [0, 1), "
                "module_ratios=, group_ratios=, threshold=, target_params= or target_macs="
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
        before = (
            measure_cost(current, self.example_inputs) if self.inplace and not self.plans_ else None
        )
        # Fast path: analyse without the probe and verify the real cut instead (exact groups:
        # zeroed == cut); if anything fails, redo the step with every group probed first.
        try:
            work, graph, plan, scores, candidates = self._attempt(current, spec, tg, only, False)
        except (ConfigError, NothingToPruneError):
            raise
        except Exception:
            work, graph, plan, scores, candidates = self._attempt(current, spec, tg, only, True)
        if self.inplace:
            current.__dict__.clear()
            current.__dict__.update(work.__dict__)
            current.__class__ = work.__class__
            work = current
        record_step(work, plan, self.example_inputs)
        self.model_, self.graph_ = work, graph
        self.scores_ = {g.key: scores[g.id] for g in candidates}
        self.plans_.append(plan)
        reference = None if self.inplace else current
        return PruneResult(work, plan, graph, self.example_inputs, reference, before)

    def _attempt(
        self,
        current: nn.Module,
        spec: AllocationSpec,
        tg: dict[str, float],
        only: Any,
        verify: bool,
    ) -> tuple[nn.Module, DependencyGraph, PruningPlan, dict[int, torch.Tensor], list[Group]]:
        """One analyse -> score -> allocate -> cut on a copy of ``current``."""
        work = copy.deepcopy(current)
        graph = analyze(work, self.example_inputs, trace_mode=self.trace_mode, verify=verify)
        modules = dict(work.named_modules())
        candidates = [
            g
            for g in graph.groups
            if not is_ignored(g, self.ignored, modules) and (only is None or g.key in only)
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
        if verify:
            plan.apply_to_graph(work, graph)
            check_runs(work, self.example_inputs, graph.example_output)
        else:
            verified_cut(work, graph, plan, self.example_inputs, self.verify)
        return work, graph, plan, scores, candidates

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
        if spec.group_ratios:
            check_group_keys(spec.group_ratios, (g.key for g in graph.groups))
        if (
            spec.module_ratios
            or spec.group_ratios
            or spec.threshold is not None
            or spec.max_ratio < 1.0
        ):
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
        extra = spec.meta()
        meta = {k: extra.pop(k) for k in ("ratio", "scope", "round_to")}
        meta["importance"] = imp if isinstance(imp, str) else type(imp).__name__
        meta.update(extra)
        meta.update({f"target_{k}": v for k, v in targets.items()})
        if self.trace_mode != "eval":
            meta["trace_mode"] = self.trace_mode
        return PruningPlan(
            {g.key: chosen[g.id] for g in candidates if chosen[g.id]},
            {g.key: g.num_units for g in graph.groups},
            meta,
        )


class _Options(TypedDict, total=False):
    """The keyword options every form of :func:`prune` accepts (for its overloads)."""

    ratio: float | None
    importance: str | Importance
    scope: str
    ignore: Any
    round_to: int
    inplace: bool
    module_ratios: dict[str, float] | None
    threshold: float | None
    max_ratio: float
    target_params: float | None
    target_macs: float | None
    trace_mode: str
    group_ratios: dict[str, float] | None
    verify: str
    steps: int | None
    ramp: str
    callback: Callback | None


@overload
def prune(
    model: nn.Module,
    example_inputs: Any,
    *,
    schedule: None = None,
    granularity: Literal["structured"] = "structured",
    **options: Unpack[_Options],
) -> PruneResult: ...
@overload
def prune(
    model: nn.Module,
    example_inputs: Any,
    *,
    schedule: str | Schedule,
    granularity: Literal["structured"] = "structured",
    **options: Unpack[_Options],
) -> ScheduleResult: ...
@overload
def prune(
    model: nn.Module,
    example_inputs: Any,
    *,
    granularity: str,
    schedule: str | Schedule | None = None,
    **options: Unpack[_Options],
) -> WeightPruneResult: ...
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
    group_ratios: dict[str, float] | None = None,
    verify: str = "exact",
    schedule: str | Schedule | None = None,
    steps: int | None = None,
    ramp: str = "cubic",
    callback: Callback | None = None,
    granularity: str = "structured",
) -> PruneResult | ScheduleResult | WeightPruneResult:
    """Prune ``model``: remove its lowest-scoring units (or mask its lowest weights).

    Args:
        model: the model to prune; untouched unless ``inplace=True``.
        example_inputs: a tensor, a tuple of positional inputs, or a dict of keyword inputs.
        ratio: fraction of units to remove, in [0, 1) (with a schedule: the final fraction;
            at weight level: the fraction of weights).
        importance: a criterion name (``"l1"``, ``"l2"``, ``"taylor"``, ``"loss"``,
            ``"random"`` ... see :func:`prunekit.importance.available_importances`) or object
            (e.g. ``Taylor(data=loader, loss_fn=fn)``, ``Fuse(["taylor", "l2"])``); an
            object with a ``prepare(model, graph)`` method (data-driven criteria) is prepared
            on the analysed copy first, again before every step of a schedule.
        scope: ``"local"`` (same fraction per group) or ``"global"`` (ranked across groups);
            at weight level also ``"row"`` (per output unit).
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
        group_ratios: per-group ratios by group key (``"0.weight:0"``, as printed by
            :func:`prunekit.analyze`), e.g. ``Sensitivity.allocate(0.5).group_ratios``; they
            win over ``module_ratios`` and ``ratio`` for the groups they name.
        verify: how the cut is checked before it is returned: ``"exact"`` (default: it runs,
            keeps the output shapes, and its outputs equal the unpruned model's with the
            removed units zeroed, for every exact group; two forward passes) or ``"shapes"``
            (only runs with the same output shapes, on the meta device when possible: faster,
            but blind to code that silently reads a stale size). If the check fails, every
            group is probed with a trial cut, the breaking ones are frozen, and the step is
            redone.
        schedule: when to cut: ``None`` (one step), ``"oneshot"``, ``"iterative"``
            (``steps`` steps along a ``ramp``, re-scoring before each), ``"hierarchical"``
            (``steps`` stages, deepest groups first), a registered name (see
            :func:`prunekit.schedule.register_schedule`) or a schedule object
            (``prunekit.schedule.Iterative(0.5, steps=8)``). Named schedules are sized by
            ``ratio`` alone.
        steps: iterative steps / hierarchical stages (default 4 / 2).
        ramp: ``"cubic"`` (Zhu & Gupta 2017) or ``"linear"``, for ``"iterative"``.
        callback: ``callback(model, step)`` between steps, e.g. a short fine-tune.
        granularity: ``"structured"`` (default: remove whole units), ``"unstructured"``
            (mask single weights) or ``"N:M"`` (``"2:4"``, ``"4:8"``: keep N of every M
            weights along the input dim). Weight level takes ``ratio``, ``importance``
            (``"magnitude"``/``"l1"``/``"l2"``, ``"random"``, ``Taylor(data=, loss_fn=)``,
            ``Wanda(data=)``), ``scope``, ``ignore``, ``inplace`` and an ``"iterative"``
            schedule. On CPU it saves bytes (``result.save(path)``), not time.

    Returns:
        A :class:`PruneResult` (``.model``, ``.plan``, ``.summary()``); with a schedule a
        :class:`prunekit.schedule.ScheduleResult` (``.model``, ``.plan``: the replayable
        :class:`~prunekit.schedule.SchedulePlan`, ``.steps``: each step's
        :class:`PruneResult`, ``.summary()``); at weight level a
        :class:`prunekit.sparsity.WeightPruneResult` (``.model`` with masks kept during
        fine-tuning, ``.summary()`` per layer, ``.make_permanent()``, ``.save(path)``).

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
        ...                           torch.nn.Conv2d(8, 4, 3))
        >>> x = torch.randn(1, 3, 8, 8)
        >>> prunekit.prune(net, x, ratio=0.5).model[0].out_channels
        4
        >>> res = prunekit.prune(net, x, ratio=0.5, schedule="iterative", steps=2, ramp="linear")
        >>> [p.num_removed for p in res.plan.steps], res.model[0].out_channels
        ([2, 2], 4)
        >>> sparse = prunekit.prune(net, x, ratio=0.75, granularity="unstructured")
        >>> round(sparse.summary().weight_sparsity, 2), type(sparse.make_permanent()[0]).__name__
        (0.75, 'Conv2d')
    """
    sizing: dict[str, Any] = {"module_ratios": module_ratios, "threshold": threshold,
              "target_params": target_params, "target_macs": target_macs,
              "group_ratios": group_ratios, "max_ratio": max_ratio < 1.0}  # fmt: skip
    if is_weight_level(granularity):
        sizing.update(round_to=round_to != 1, trace_mode=trace_mode != "eval",
                      verify=verify != "exact")  # fmt: skip
        return prune_weight_level(
            model, granularity=granularity, ratio=ratio, importance=importance, scope=scope,
            ignore=ignore, inplace=inplace, schedule=schedule, steps=steps, ramp=ramp,
            callback=callback, structured_only=sorted(k for k, v in sizing.items() if v),
        )  # fmt: skip
    if schedule is not None:
        return _run_schedule(
            Pruner(model, example_inputs, importance=importance, scope=scope, ignore=ignore,
                   round_to=round_to, inplace=inplace, trace_mode=trace_mode, verify=verify),
            schedule, ratio=ratio, steps=steps, ramp=ramp, callback=callback,
            sizing=sorted(k for k, v in sizing.items() if v),
        )  # fmt: skip
    if steps is not None or callback is not None:
        raise ConfigError(
            f"steps={steps!r}/callback={callback!r} need a schedule: pass schedule='iterative'"
        )
    pruner = Pruner(
        model, example_inputs, importance=importance, ratio=ratio, scope=scope, ignore=ignore,
        round_to=round_to, module_ratios=module_ratios, threshold=threshold,
        max_ratio=max_ratio, target_params=target_params, target_macs=target_macs,
        inplace=inplace, trace_mode=trace_mode, group_ratios=group_ratios, verify=verify,
    )  # fmt: skip
    return pruner.step()
