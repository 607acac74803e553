"""Orchestration: analyse -> score -> allocate -> cut, atomically."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from . import distributed
from ._modelio import default_inputs
from .allocation import (
    BudgetReport,
    allocator_for,
    check_group_keys,
    get_allocator,
    resolve_target,
    search_budget,
)
from .allocation.candidates import (
    check_module_patterns,
    ignored_names,
    is_ignored,
    kept_streams,
    warn_kept_streams,
)
from .analysis import analyze_copy
from .checks import check_model, check_scores
from .cost import CostReport, count_macs, count_params
from .errors import ConfigError, EquivalenceError, NothingToPruneError
from .graph.dependency import DependencyGraph, Group
from .graph.tracer import ATTENTION_UNITS, MODES
from .importance import Importance, get_importance
from .plan import PruningPlan, plan_of_choice, record_step
from .recalibration import check_batches_fit, recalibrate_named, warn_stale_bn_after_prune
from .result import PruneResult, PruneSummary, measure_untouched
from .schedule import Callback, Schedule, Step, drive, step_spec
from .spec import CutSpec, renamed
from .surgery.apply import light_copy, own_storage
from .verify import check_runs, check_verify, verified_cut

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


def _check_choice(name: str, value: object, valid: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in valid:
        raise ConfigError(f"{name}={value!r} is unknown; use one of {valid}")
    return value


class Pruner:
    """Analyse -> score -> allocate -> cut, one :meth:`step` at a time.

    Each step re-analyses the current (already pruned) model, prepares data-driven criteria
    on it, scores every candidate group, allocates, cuts a copy, and checks that it runs;
    on any failure the current model is unchanged. How much to cut is one
    :class:`~prunekit.spec.CutSpec`: pass it as ``spec=``, or the keywords that build it
    (``ratio`` with ``scope``, ``module_ratios``, ``group_ratios`` (by group key, e.g. from
    a sensitivity analysis), ``threshold`` (score), ``max_ratio``, ``round_to``,
    ``streams``, or one budget: ``target_params`` / ``target_macs``: a count, or a float
    in (0, 1), the fraction of the unpruned cost to keep, met by a binary search on a
    global threshold with exact trial cuts). :meth:`run` cuts a schedule's steps.

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
        bn_data: Any = None,
        attention: str = "heads",
        streams: str = "keep",
        spec: CutSpec | None = None,
        calibration_data: Any = None,
    ) -> None:
        keywords = CutSpec(
            ratio, scope, dict(module_ratios or {}), threshold, max_ratio, round_to,
            dict(group_ratios or {}), None, target_params, target_macs, streams,
        )  # fmt: skip
        if spec is not None and keywords != CutSpec():
            raise ConfigError(
                f"pass spec= or the sizing keywords, not both (the keywords say "
                f"{keywords.meta() | keywords.targets}); e.g. spec=spec.replace(ratio=0.5)"
            )
        if spec is not None and not isinstance(spec, CutSpec):
            raise ConfigError(f"spec={spec!r} must be a prunekit.spec.CutSpec")
        self.spec: CutSpec = keywords if spec is None else spec
        self.importance = importance
        self.criterion = get_importance(importance)
        self.example_inputs = example_inputs
        self.original = check_model(model)
        self.ignored = ignored_names(model, ignore)
        check_module_patterns(model, self.spec.module_ratios)
        self._warned_streams = False
        self.inplace = inplace
        self.trace_mode = _check_choice("trace_mode", trace_mode, MODES)
        self.attention = _check_choice("attention", attention, ATTENTION_UNITS)
        self.verify = check_verify(verify)
        self.bn_data = renamed("bn_data", bn_data, "calibration_data", calibration_data, "Pruner")
        self.recalibrated_: int = 0
        self._warned_bn = False
        self.model_: nn.Module = model
        self.plans_: list[PruningPlan] = []
        self.scores_: dict[str, torch.Tensor] = {}
        self.graph_: DependencyGraph | None = None
        self.budget_: BudgetReport | None = None
        self._baseline: CostReport | None = None

    @property
    def plan_(self) -> PruningPlan | None:
        return self.plans_[-1] if self.plans_ else None

    @property
    def targets(self) -> dict[str, float]:
        """The budget of the constructor's spec (``{metric: value}``; empty without one)."""
        return self.spec.targets

    def _sized(self, ratio: float | None, targets: dict[str, float] | None) -> CutSpec:
        spec = self.spec
        if targets is not None:
            clear: dict[str, Any] = {"ratio": None, "threshold": None, "group_ratios": {}}
            budget = {f"target_{m}": targets.get(m) for m in ("params", "macs")}
            spec = spec.replace(**clear, **budget)
        if ratio is not None:
            spec = spec.replace(ratio=ratio, target_params=None, target_macs=None)
        if not spec.sized:
            raise ConfigError(
                f"ratio={ratio!r} and nothing else says how much to cut: pass ratio= in [0, 1), "
                "module_ratios=, group_ratios=, threshold=, target_params= or target_macs="
            )
        return spec

    def step(
        self,
        ratio: float | None = None,
        *,
        targets: dict[str, float] | None = None,
        only: Any = None,
        spec: CutSpec | None = None,
    ) -> PruneResult:
        """Prune the current model once.

        ``spec`` (a :class:`~prunekit.spec.CutSpec`) replaces the constructor's for this
        step; ``ratio``/``targets`` override its ratio or budget; ``only`` (group keys)
        restricts this step to those groups (hierarchical schedules).
        """
        if spec is not None and (ratio is not None or targets is not None):
            raise ConfigError("pass spec= or ratio=/targets= to step(), not both")
        spec = self._sized(ratio, targets) if spec is None else spec
        current = self.model_
        before = (
            measure_untouched(current, self.example_inputs)
            if self.inplace and not self.plans_
            else None
        )
        # Fast path: analyse without the probe and verify the real cut instead (exact groups:
        # zeroed == cut); if that check fails (EquivalenceError: the cut fails, does not run,
        # changes shapes or outputs), redo the step with every group probed first. Any other
        # error is the caller's to see: it would fail the probed step the same way.
        with _no_cyclic_gc():  # the step allocates many small objects, all freed by refcount
            try:
                work, graph, plan, scores, candidates = self._attempt(
                    current, spec, spec.targets, only, False
                )
            except EquivalenceError:
                work, graph, plan, scores, candidates = self._attempt(
                    current, spec, spec.targets, only, True
                )
        if not self.inplace:
            own_storage(work, current)  # training the result never writes into ``current``
        # every stage after the cut runs on ``work``: if one fails, ``current`` is as it was
        self._recalibrate(work)
        record_step(work, plan, self.example_inputs)
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

    def run(
        self, schedule: Schedule | None = None, *, callback: Callback | None = None
    ) -> PruneResult:
        """Cut the steps of ``schedule`` (``None``: one :meth:`step`), re-analysing and
        re-scoring before each; ``callback(model, i)`` (or the schedule's own) runs between
        steps (a returned module replaces the model). The schedule's own ``ratio``, if it
        carries one, sizes the cut; otherwise the spec is ramped (ratio or budget alike).

        Example:
            >>> import torch, prunekit
            >>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
            >>> res = prunekit.Pruner(net, torch.randn(1, 4), target_params=0.5).run(
            ...     prunekit.schedule.Iterative(steps=2, ramp="linear"))
            >>> len(res.steps), res.after.params <= res.before.params // 2
            (2, True)
        """
        if schedule is None:
            return self.step()
        if not callable(getattr(schedule, "steps_for", None)):
            return schedule.run(self)  # type: ignore[attr-defined, no-any-return]
        own = getattr(schedule, "ratio", None)
        final = self.spec if own is None else self._sized(own, None)
        if not final.sized:
            self._sized(None, None)  # raises: nothing says how much to cut
        cb = callback if callback is not None else getattr(schedule, "callback", None)
        results: list[PruneResult] = []

        def apply(step: Step) -> None:
            spec = step_spec(final, step, [r.plan for r in results], self._baseline_cost)
            if spec is not None:
                results.append(self.step(spec=spec, only=step.only))

        def between(i: int) -> None:
            out = cb(self.model_, i)  # type: ignore[misc]
            if isinstance(out, nn.Module):
                self.model_ = out

        drive(schedule.steps_for(self.model_, self.example_inputs), apply,
              between if cb is not None else None)  # fmt: skip
        return PruneResult.of_steps(self.model_, results)

    def _recalibrate(self, model: nn.Module) -> None:
        """Re-estimate BatchNorm statistics of the cut model (never hand back stale ones).

        Data: ``bn_data``, else the data-driven criterion's own batches. The
        re-estimation lives in :mod:`prunekit.recalibration`, below the pruner.
        """
        label, data = "bn_data", self.bn_data
        if data is None:
            label, data = "the criterion's calibration data", getattr(self.criterion, "data", None)
        self.recalibrated_ = 0
        if data is not None and data is not False:
            self.recalibrated_ = recalibrate_named(model, data, label, self.example_inputs)
        elif data is None and not self._warned_bn:
            self._warned_bn = warn_stale_bn_after_prune(model, stacklevel=4)  # prune()'s caller

    def _data_sources(self) -> list[tuple[str, Any, Any]]:
        """(label, batches, inputs function) of every batch source the step will run."""
        out: list[tuple[str, Any, Any]] = []
        if self.bn_data is not None and self.bn_data is not False:
            out.append(("bn_data", self.bn_data, default_inputs))
        cal = getattr(self.criterion, "calibration", None)
        if cal is not None and hasattr(cal, "batch_list"):
            label = f"the {type(self.criterion).__name__} calibration data"
            out.append((label, cal.batch_list(), cal.inputs))
        return out

    def _check_scores(self, scores: dict[int, torch.Tensor], candidates: list[Group]) -> None:
        """Scores must be finite: NaN ranks units arbitrarily."""
        name = self.importance if isinstance(self.importance, str) else type(self.importance)
        check_scores(
            str(getattr(name, "__name__", name)), ((g.key, scores[g.id]) for g in candidates)
        )

    def _attempt(
        self,
        current: nn.Module,
        spec: CutSpec,
        tg: dict[str, float],
        only: Any,
        probe: bool,
    ) -> tuple[nn.Module, DependencyGraph, PruningPlan, dict[int, torch.Tensor], list[Group]]:
        """One analyse -> score -> allocate -> cut on a copy of ``current``; ``probe``: probe
        every group first (else the cut itself is verified, by ``self.verify``); ``tg`` is
        ``spec.targets`` (the budget, if any)."""
        # a storage-sharing copy: the cut and zeroing never write into existing tensors, and
        # step() clones whatever is still shared before handing the model out
        work = light_copy(current)
        graph = analyze_copy(
            work,
            self.example_inputs,
            trace_mode=self.trace_mode,
            probe=probe,
            attention=self.attention,
        )
        check_batches_fit(work, self._data_sources(), self.example_inputs)
        modules = dict(work.named_modules())
        streams = kept_streams(graph.groups, spec)
        candidates = [
            g
            for g in graph.groups
            if not is_ignored(g, self.ignored, modules)
            and (only is None or g.key in only)
            and g.key not in streams
        ]
        if not candidates:
            raise NothingToPruneError(
                f"{type(current).__name__} has no prunable group ({len(graph.groups)} groups, all "
                "ignored, frozen or model-wide residual streams kept by streams='keep'); "
                "print(prunekit.analyze(model, example_inputs)) shows why"
            )
        self._warn_streams(graph, streams)
        self.criterion.prepare(work, graph)
        scores = {g.id: self.criterion(g, graph.tensors).detach().float().cpu() for g in candidates}
        self._check_scores(scores, candidates)
        chosen = self._choose(work, graph, candidates, scores, spec, modules)
        plan = self._plan(graph, candidates, chosen, spec, sorted(streams))
        distributed.check_same("pruning plan", sorted(plan.removed.items()))  # torchrun only
        if probe:
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
        spec: CutSpec,
        modules: dict[str, nn.Module],
    ) -> dict[int, list[int]]:
        self.budget_ = None
        if spec.targets:
            ((metric, value),) = spec.targets.items()
            target = resolve_target(metric, value, self._baseline_cost(metric))

            def cost(cut: dict[int, list[int]]) -> int:
                trial = light_copy(work)  # cut() never writes into existing tensors
                try:
                    self._plan(graph, candidates, cut, spec, []).apply_to_graph(trial, graph)
                    return self._cost(trial, metric)
                except Exception as exc:  # an unprobed group breaks the trial cut
                    raise EquivalenceError(
                        f"a trial cut of the {metric} budget search failed to run "
                        f"({type(exc).__name__}: {str(exc)[:200]})"
                    ) from exc

            chosen, self.budget_ = search_budget(
                candidates, scores, cost, metric=metric, target=target,
                baseline=self._cost(work, metric), max_ratio=spec.max_ratio, round_to=spec.round_to,
            )  # fmt: skip
            return chosen
        if spec.group_ratios:
            check_group_keys(spec.group_ratios, (g.key for g in graph.groups))
        plain = spec.budgetless()
        return get_allocator(allocator_for(plain))(candidates, scores, plain, modules)

    def _warn_streams(self, graph: DependencyGraph, streams: set[str]) -> None:
        """Say once which model-wide residual streams ``streams="keep"`` left out."""
        if streams and not self._warned_streams:
            self._warned_streams = True
            warn_kept_streams([g.name for g in graph.groups if g.key in streams], stacklevel=4)

    def _cost(self, model: nn.Module, metric: str) -> int:
        return count_params(model) if metric == "params" else count_macs(model, self.example_inputs)

    def _baseline_cost(self, metric: str) -> int:
        if self._baseline is None:
            self._baseline = measure_untouched(
                self.original if not self.plans_ or not self.inplace else self.model_,
                self.example_inputs,
            )
        return self._baseline.params if metric == "params" else self._baseline.macs

    def _plan(
        self,
        graph: DependencyGraph,
        candidates: list[Group],
        chosen: dict[int, list[int]],
        spec: CutSpec,
        streams: list[str],
    ) -> PruningPlan:
        imp = self.importance
        return plan_of_choice(
            graph, candidates, chosen, spec,
            importance=imp if isinstance(imp, str) else type(imp).__name__,
            streams=streams, trace_mode=self.trace_mode, attention=self.attention,
        )  # fmt: skip
