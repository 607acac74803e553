"""Orchestration: analyse -> score -> allocate -> cut, atomically."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

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
from .surgery.apply import light_copy, own_storage
from .verify import check_runs, check_verify, verified_cut

if TYPE_CHECKING:
    pass


__all__ = ["Pruner", "PruneResult", "PruneSummary"]


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause Python's cyclic collector (full collections over a large heap cost tens of ms
    each and fire at random points of a step); restore it afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
        calibration_data: Any = None,
        attention: str = "heads",
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
        self.calibration_data = calibration_data
        self.attention = attention
        self.recalibrated_: int = 0
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
        with _no_cyclic_gc():  # the step allocates many small objects, all freed by refcount
            try:
                work, graph, plan, scores, candidates = self._attempt(
                    current, spec, tg, only, False
                )
            except (ConfigError, NothingToPruneError):
                raise
            except Exception:
                work, graph, plan, scores, candidates = self._attempt(current, spec, tg, only, True)
        if not self.inplace:
            own_storage(work, current)  # training the result never writes into ``current``
        if self.inplace:
            current.__dict__.clear()
            current.__dict__.update(work.__dict__)
            current.__class__ = work.__class__
            work = current
        self._recalibrate(work)
        record_step(work, plan, self.example_inputs)
        self.model_, self.graph_ = work, graph
        self.scores_ = {g.key: scores[g.id] for g in candidates}
        self.plans_.append(plan)
        reference = None if self.inplace else current
        return PruneResult(work, plan, graph, self.example_inputs, reference, before)

    def _recalibrate(self, model: nn.Module) -> None:
        """Re-estimate BatchNorm statistics of the cut model (never hand back stale ones).

        Data: ``calibration_data``, else the data-driven criterion's own batches. The
        recalibration lives in ``prunekit.recovery.batchnorm``, which depends on nothing in
        prunekit but its errors, so the pruner can use it without a dependency cycle.
        """
        data = self.calibration_data
        if data is None:
            data = getattr(self.criterion, "data", None)
        self.recalibrated_ = 0
        if data is not None and data is not False:
            from .recovery.batchnorm import recalibrate_bn

            self.recalibrated_ = recalibrate_bn(model, data)

    def _attempt(
        self,
        current: nn.Module,
        spec: AllocationSpec,
        tg: dict[str, float],
        only: Any,
        verify: bool,
    ) -> tuple[nn.Module, DependencyGraph, PruningPlan, dict[int, torch.Tensor], list[Group]]:
        """One analyse -> score -> allocate -> cut on a copy of ``current``."""
        # a storage-sharing copy: the cut and zeroing never write into existing tensors, and
        # step() clones whatever is still shared before handing the model out
        work = light_copy(current)
        graph = analyze(
            work,
            self.example_inputs,
            trace_mode=self.trace_mode,
            verify=verify,
            attention=self.attention,
        )
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
                trial = light_copy(work)  # cut() never writes into existing tensors
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
        if self.attention != "heads":
            meta["attention"] = self.attention
        return PruningPlan(
            {g.key: chosen[g.id] for g in candidates if chosen[g.id]},
            {g.key: g.num_units for g in graph.groups},
            meta,
        )
