"""Accuracy- and budget-constrained search over pruning ratios and strategies.

Two questions, one function:

- *tolerance*: "as small as possible while losing at most ``tolerance`` of the metric":
  per strategy, a bisection on the overall ratio keeps the largest ratio whose metric
  (after calibration and recovery) is ``>= baseline - tolerance``; the strategy reaching
  the fewest MACs wins.
- *budget*: "hit this MACs / params / latency budget with the least loss": per strategy,
  the cut that just meets the budget, then recovery; the highest metric wins.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ConfigError, SearchError
from ..plan import PruningPlan
from ..recalibration import warn_stale_bn
from ..spec import SEARCH_MAX_RATIO, SEARCH_STEPS, renamed
from .bisect import largest_passing, smallest_fitting
from .checkpoint import SearchCheckpoint
from .config import SearchConfig
from .defaults import default_strategies, resolve_finishing
from .engine import SearchRun, score
from .result import CrossValidation, SearchPoint, SearchResult
from .spec import Budget, Strategy
from .validate import check_folds, check_strategies, ignore_names, is_number

__all__ = ["search", "InfeasibleSearchError", "monotone_note"]

Metric = Callable[[nn.Module], float]


class InfeasibleSearchError(SearchError):
    """No candidate met the constraint; ``points`` holds everything that was measured."""

    def __init__(self, message: str, points: list[SearchPoint]) -> None:
        super().__init__(message)
        self.points = points


def search(
    model: nn.Module,
    example_inputs: Any,
    *,
    metric: Metric,
    tolerance: float | None = None,
    budget: Budget | None = None,
    strategies: Sequence[Strategy] | None = None,
    recover: Callable[[nn.Module], Any] | None = None,
    after_cut: Callable[[nn.Module], Any] | None = None,
    steps: int = SEARCH_STEPS,
    max_ratio: float = SEARCH_MAX_RATIO,
    schedule_steps: int = 1,
    checkpoint: str | Path | None = None,
    cv_metrics: Sequence[Metric] | None = None,
    seed: int = 0,
    progress: bool = True,
    calibrate: Callable[[nn.Module], Any] | None = None,
    data: Iterable[Any] | None = None,
    compensate: bool | str = "auto",
    guard_recover: bool = True,
) -> SearchResult:
    """Find the smallest model within a metric tolerance, or the best model within a budget.

    Every candidate is a fresh copy of ``model`` cut by :func:`prunekit.prune`, then
    finished by the search itself (with ``data``: least-squares compensation, then BN
    re-estimation), then passed to ``after_cut``, then ``recover``-ed, then scored by
    ``metric`` (in eval mode).

    **Pass ``data`` (a few training batches).** With it the search compares a data-driven
    criterion too, refits every candidate's layers to the unpruned outputs
    (:func:`prunekit.recovery.compensate`) and re-estimates its BatchNorm statistics before
    ``recover``: on issue #19's BN CNN on digits this finds 12x fewer MACs within one
    point of validation accuracy where the former defaults found 1.15x
    (docs/search_defaults.md, which also shows the validation/test gap of such a choice).

    **Without ``data``, pass ``after_cut`` for models with BatchNorm.** A cut changes the inputs of the
    layers after it, so their BatchNorm running statistics are stale; without
    ``after_cut`` each candidate is measured with those stale statistics and the search
    underrates every cut. ``after_cut`` (e.g. a BN re-estimation: forward passes over a few
    training batches in train mode, no gradient steps) runs right after every cut, before
    ``recover`` and before ``metric``, so no cut model is ever measured with stale
    statistics. It defaults to ``None`` only because the search cannot know your data:
    ``after_cut=lambda m: prunekit.recovery.reestimate_bn(m, train_loader)``.

    Args:
        model: the trained model; it is not modified.
        example_inputs: as for :func:`prunekit.prune` (also the input MACs are counted on).
        metric: ``metric(model) -> float``, higher is better, on validation data (e.g.
            accuracy as a fraction). Run it under ``torch.no_grad()``.
        tolerance: the largest allowed drop of ``metric`` from the unpruned model's, in the
            metric's units (0.01 = one point of a fractional accuracy). Pass this or ``budget``.
        budget: a :class:`Budget` (``macs``, ``params`` or ``latency``). Pass this or
            ``tolerance``.
        strategies: the :class:`Strategy` list to compare under the same constraint
            (default: L2 magnitude ranked globally and locally and, with ``data``, the
            :class:`~prunekit.importance.Reconstruction` criterion on ``data`` in both scopes;
            :func:`prunekit.search.defaults.default_strategies`). ``result.strategies`` and
            ``str(result)`` list what was compared.
        recover: quick recovery applied to every candidate (e.g. one fine-tuning epoch);
            it modifies the model in place or returns the recovered module.
        after_cut: applied right after every cut, before ``recover`` and ``metric`` (see
            above); in place or returning the module.
        steps: bisection steps (the ratio is found to ``max_ratio / 2**steps``).
        max_ratio: the largest overall ratio (fraction of units removed) tried.
        schedule_steps: ``> 1`` cuts each candidate in that many steps (the cumulative
            ratio or, for MACs/params budgets met by ``prune``, the cost target ramps
            linearly), with ``after_cut`` and ``recover`` after every step: better at high
            ratios, ``schedule_steps`` times the recovery cost.
        checkpoint: a directory; after every point its record (JSON) and the best-so-far
            plan are written atomically. Rerunning with the same directory and settings
            reuses the recorded points (no re-evaluation) and continues where it stopped.
        cv_metrics: one metric per cross-validation fold. In tolerance mode they constrain
            the choice: a candidate within the tolerance on ``metric`` is also scored by every
            fold, and it is satisfied only if their mean is at most ``tolerance`` below the
            unpruned model's mean (``point.cv_mean``, ``baseline.cv_mean``). In both modes
            the chosen model is scored by each, and ``result.cv`` reports mean ± std.
        seed: every candidate is built seeded (the cut from ``seed``, the finishing of
            step ``t = 1, 2, ...`` from ``seed + t``), so a candidate rebuilt from its plan
            is identical; the caller's random state is restored.
        progress: print one line per point to stderr.
        calibrate: the former name of ``after_cut``.
        data: calibration batches (a ``DataLoader`` of training data, ``(x, y)`` tuples or
            tensors): the default data-driven strategies score on them, and every candidate
            is compensated and its BatchNorm statistics re-estimated on them.
        compensate: ``"auto"`` (default: with ``data``, when the model has a layer its
            surgery handler can refit), ``True`` (required; raises without ``data``) or
            ``False``. ``result.finishing`` records the decision and the order of the steps.
        guard_recover: ``True`` (default): each candidate is measured before and after
            ``recover``, and recover's model is kept only if the metric did not drop (a quick
            fine-tuning epoch can undo what compensation restored: on a narrow CNN, 98.6%
            after compensation, 89.1% after the epoch); ``point.recovered`` says which one
            was kept. One more ``metric`` call per candidate. ``False``: always recover's.

    Returns:
        A :class:`SearchResult`: ``model``, ``best``, ``plan``, ``points``, ``baseline``,
        ``curve()``, ``to_dict()``.

    Raises:
        ConfigError: invalid arguments (both or neither of ``tolerance`` and ``budget`` ...).
        SearchError: the checkpoint belongs to other settings, or
            :class:`InfeasibleSearchError` when no candidate meets the constraint.

    Example:
        >>> import torch
        >>> from prunekit.search import search, Budget
        >>> _ = torch.manual_seed(0)
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
        >>> x = torch.randn(64, 4)
        >>> ref = net(x).detach()
        >>> def fidelity(m):  # higher is better
        ...     with torch.no_grad():
        ...         return -float((m(x) - ref).pow(2).mean())
        >>> res = search(net, x[:1], metric=fidelity, tolerance=0.05, steps=4, progress=False)
        >>> res.best.satisfied, res.best.macs < res.baseline.macs, fidelity(res.model) >= -0.05
        (True, True, True)
        >>> res = search(net, x[:1], metric=fidelity, budget=Budget(macs=0.5), progress=False)
        >>> res.best.macs <= res.baseline.macs // 2
        True
    """
    start = time.perf_counter()
    after_cut = renamed("after_cut", after_cut, "calibrate", calibrate, "search")
    finishing = resolve_finishing(model, data, compensate, guard_recover)
    chosen = default_strategies(data) if strategies is None else strategies
    config = _config(metric, tolerance, budget, chosen, recover, after_cut, steps,
                     max_ratio, schedule_steps, seed, progress)  # fmt: skip
    folds = check_folds(cv_metrics)
    config = dataclasses.replace(config, finishing=finishing, data=data,
                                 cv_metrics=tuple(folds) if folds else None)  # fmt: skip
    if not finishing.reestimate_bn:
        _warn_stale_bn(model, after_cut)
    ignore = {s.name: ignore_names(model, s) for s in config.strategies}
    store = SearchCheckpoint(checkpoint, config.settings(model, example_inputs))
    better = _fewer_macs if config.mode == "tolerance" else _higher_metric
    run = SearchRun(model, example_inputs, config, store, better, ignore)
    run.baseline()
    notes: list[str] = []
    for strategy in config.strategies:
        if config.mode == "tolerance":
            notes += _tolerance(run, strategy)
        else:
            notes += _budget(run, strategy)
    return _finish(run, notes, folds, start, defaults=strategies is None)


def _finish(
    run: SearchRun, notes: list[str], folds: list[Metric] | None, start: float, *, defaults: bool
) -> SearchResult:
    """Choose the best point, (re)build its model, cross-validate, write the result."""
    config, base = run.config, run.base
    assert base is not None
    points = sorted(run.visited.values(), key=lambda p: p.index)
    best = run.best(points)
    notes = notes + run.finisher.note() + _recover_note(points)
    if best is None:
        raise InfeasibleSearchError(_infeasible(run, points, notes), points)
    model = run.model_of(best).eval()
    plans = run.plans_of(best)
    plan = (
        plans[0]
        if config.schedule_steps == 1
        else PruningPlan(steps=plans, meta={"strategy": best.strategy, "ratio": best.ratio})
    )
    cv = None
    if folds is not None:
        values = [
            score(f, model, f"(cv_metrics[{i}]) on the chosen model") for i, f in enumerate(folds)
        ]
        cv = CrossValidation.of(values)
    result = SearchResult(
        model, best, plan, points, base, config.mode, config.constraint(),
        [s.to_dict() for s in config.strategies], cv, notes, time.perf_counter() - start,
        defaults, config.finishing.to_dict(),
    )  # fmt: skip
    run.store.write("result", result.to_dict())
    return result


def _recover_note(points: list[SearchPoint]) -> list[str]:
    """A note when ``recover`` lowered the metric of some candidates (guard_recover)."""
    mine = [p for p in points if p.recovered is not None and p.duplicate_of is None]
    worse = [p for p in mine if not all(p.recovered or [])]
    if not worse:
        return []
    return [
        f"recover lowered the metric of {len(worse)} of {len(mine)} candidates (in at least "
        "one step); they were measured (and "
        "are returned) as they were before recover (guard_recover=False keeps recover's "
        "model always); a gentler recover (lower lr) may help"
    ]


def _tolerance(run: SearchRun, strategy: Strategy) -> list[str]:
    """Bisect on the ratio; note a metric that is not monotone in the MACs."""
    upper = strategy.max_search_ratio(run.config.max_ratio)
    largest_passing(lambda r: run.evaluate(strategy, ratio=r).satisfied, upper, run.config.steps)
    return monotone_note(strategy.name, list(run.visited.values()))


def monotone_note(strategy: str, points: Sequence[SearchPoint]) -> list[str]:
    """A note when a smaller model met the tolerance but a larger one did not.

    Bisection assumes that fewer MACs never score better; when the points contradict it,
    the strongest satisfying point is still the one chosen, but bisection may have
    skipped stronger ones.

    Example:
        >>> pts = [SearchPoint("s", "evaluated", r, 0, m, 0.0, ok, 0.0)
        ...        for r, m, ok in [(0.2, 80, False), (0.4, 60, True)]]
        >>> monotone_note("s", pts)[0][:45]
        "strategy 's': the metric is not monotone (a c"
        >>> monotone_note("s", pts[1:])
        []
    """
    mine = [p for p in points if p.strategy == strategy and p.kind == "evaluated"]
    for fail in (p for p in mine if not p.satisfied):
        ok = min((p for p in mine if p.satisfied and p.macs < fail.macs), default=None,
                 key=lambda p: p.macs)  # fmt: skip
        if ok is not None:
            return [
                f"strategy {strategy!r}: the metric is not monotone (a cut to {fail.macs:,} MACs "
                f"at ratio {fail.ratio:.4f} missed the tolerance, a smaller one to {ok.macs:,} "
                f"MACs at ratio {ok.ratio:.4f} met it); the strongest satisfying point is kept, "
                "but bisection may have skipped stronger ones"
            ]
    return []


def _budget(run: SearchRun, strategy: Strategy) -> list[str]:
    """Cut to the budget (prune's own budget search, or bisection on the ratio), recover."""
    config, base, target = run.config, run.base, run.target
    assert config.budget is not None and base is not None and target is not None
    upper = strategy.max_search_ratio(config.max_ratio)
    unreachable = [
        f"strategy {strategy.name!r} cannot reach the budget ({config.budget.metric} <= "
        f"{target:,}): cutting ratio {upper:.3f} is not enough; raise max_ratio or "
        "the strategy's max_ratio, or loosen the budget"
    ]
    if config.budget.metric != "latency" and strategy.is_plain_global:
        try:
            run.evaluate(strategy, target=int(target))
        except ConfigError:
            if run.trial(strategy, upper).satisfied:
                raise
            return unreachable
        return []
    zero_fits = run.satisfied(_as_point(base))
    fits = smallest_fitting(
        lambda r: run.trial(strategy, r).satisfied, upper, config.steps, zero_fits=zero_fits
    )
    if fits is None:
        return unreachable
    run.evaluate(strategy, ratio=fits)
    return []


def _as_point(base: Any) -> SearchPoint:
    return SearchPoint("", "trial", 0.0, base.params, base.macs, base.metric, True, 0.0,
                       base.latency)  # fmt: skip


def _fewer_macs(a: SearchPoint, b: SearchPoint | None) -> bool:
    """Tolerance mode: fewer MACs, then a higher metric."""
    if not a.satisfied:
        return False
    return b is None or (a.macs, -(a.metric or 0.0)) < (b.macs, -(b.metric or 0.0))


def _higher_metric(a: SearchPoint, b: SearchPoint | None) -> bool:
    """Budget mode: a higher metric, then fewer MACs."""
    if not a.satisfied:
        return False
    return b is None or (-(a.metric or 0.0), a.macs) < (-(b.metric or 0.0), b.macs)


def _infeasible(run: SearchRun, points: list[SearchPoint], notes: list[str]) -> str:
    base = run.base
    assert base is not None
    evaluated = [p for p in points if p.metric is not None]
    if run.config.tolerance is not None:
        low = min(evaluated, key=lambda p: p.ratio)
        cv_missed = [p for p in evaluated if p.cv_mean is not None]
        if cv_missed and base.cv_mean is not None:
            top = max(cv_missed, key=lambda p: p.cv_mean or 0.0)
            return (
                f"no candidate met tolerance={run.config.tolerance} on the cross-validation "
                f"folds: {len(cv_missed)} met it on metric, but the best fold mean "
                f"({top.cv_mean:.4f}, strategy {top.strategy!r}, ratio {top.ratio:.4f}) is "
                f"below the floor {base.cv_mean - run.config.tolerance:.4f} (unpruned fold "
                f"mean {base.cv_mean:.4f} - tolerance); raise the tolerance, strengthen "
                "recover=, or check that the folds measure what metric= does"
            )
        return (
            f"no candidate met tolerance={run.config.tolerance}: the unpruned metric is "
            f"{base.metric:.4f}, the smallest ratio tried ({low.ratio:.4f}, strategy "
            f"{low.strategy!r}) scored {low.metric:.4f}; raise the tolerance, pass after_cut= "
            "(BatchNorm re-estimation) and recover= (fine-tuning), or raise steps to try "
            "smaller ratios"
        )
    return (
        f"no strategy met the budget {run.config.constraint()['budget']} after recovery ("
        + ("; ".join(notes) or f"{len(evaluated)} candidates over budget")
        + "); loosen the budget, raise max_ratio, or add strategies"
    )


def _config(
    metric: Any, tolerance: Any, budget: Any, strategies: Any, recover: Any, after_cut: Any,
    steps: Any, max_ratio: Any, schedule_steps: Any, seed: Any, progress: Any,
) -> SearchConfig:  # fmt: skip
    """Validate the arguments of :func:`search`."""
    if not callable(metric):
        raise ConfigError(f"metric={metric!r} must be callable model -> float (higher is better)")
    if (tolerance is None) == (budget is None):
        raise ConfigError(
            "pass exactly one of tolerance= (largest allowed metric drop, e.g. 0.01) and "
            f"budget= (e.g. Budget(macs=0.5)); got tolerance={tolerance!r}, budget={budget!r}"
        )
    if tolerance is not None and not is_number(tolerance, lambda v: v >= 0):
        raise ConfigError(f"tolerance={tolerance!r} must be a finite number >= 0, e.g. 0.01")
    if budget is not None and not isinstance(budget, Budget):
        raise ConfigError(
            f"budget={budget!r} must be a prunekit.search.Budget, e.g. Budget(macs=0.5)"
        )
    for name, hook in (("recover", recover), ("after_cut", after_cut)):
        if hook is not None and not callable(hook):
            raise ConfigError(f"{name}={hook!r} must be callable model -> Any, or None")
    for name, value in (("steps", steps), ("schedule_steps", schedule_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}={value!r} must be a positive int")
    if not is_number(max_ratio, lambda v: 0 < v < 1):
        raise ConfigError(f"max_ratio={max_ratio!r} must be a fraction in (0, 1), e.g. 0.95")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed={seed!r} must be an int")
    chosen = check_strategies(strategies)
    tol = float(tolerance) if tolerance is not None else None
    return SearchConfig(metric, tol, budget, chosen, recover, after_cut, steps,
                        float(max_ratio), schedule_steps, seed, bool(progress))  # fmt: skip


def _warn_stale_bn(model: nn.Module, after_cut: Callable[[nn.Module], Any] | None) -> None:
    """A BatchNorm model searched without ``after_cut`` is measured with stale statistics."""
    if after_cut is None:
        warn_stale_bn(
            model, "search", "after_cut=None",
            "every candidate is measured with the unpruned model's running statistics (a cut "
            "can look far worse than it is)",
            "pass after_cut=lambda m: prunekit.recovery.reestimate_bn(m, loader)", stacklevel=2,
        )  # fmt: skip
