"""The search's bookkeeping: measure a point once, record it, reuse it, keep the best model.

:class:`SearchRun` turns "this strategy at this ratio (or budget)" into a measured
:class:`~prunekit.search.SearchPoint`: it cuts a copy, finishes it (``after_cut``, recover),
measures cost and metric, and records the point and its plans in the checkpoint. A point
already in the checkpoint is returned without measuring anything.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from .. import distributed
from ..errors import ConfigError
from ..evaluation import finite_metric
from ..evaluation.cost import count_macs, count_params
from ..plan import PruningPlan
from .candidate import Cut, Known, cut_at_ratio, cut_to_target, replay
from .checkpoint import SearchCheckpoint
from .config import SearchConfig, cutting_strategies
from .defaults import Finisher, guarded_recover
from .result import Baseline, SearchPoint
from .scores import relabel
from .spec import Strategy

__all__ = ["SearchConfig", "SearchRun", "score"]

Metric = Callable[[nn.Module], float]
Hook = Callable[[nn.Module], Any]


def score(metric: Metric, model: nn.Module, where: str) -> float:
    """``metric(model)`` (model in eval mode) as a finite float, else a ConfigError.

    Under torchrun each rank measures its own validation shard and the mean over the ranks
    is returned on every rank, so that every rank makes the same choice."""
    model.eval()
    return distributed.mean_across_ranks(finite_metric(metric, model, where))


class SearchRun:
    """Measure, record and reuse the points of one search.

    Args:
        model: the unpruned model (never modified).
        example_inputs: as for :func:`prunekit.prune`.
        config: the validated settings.
        store: the checkpoint (in memory or on disk).
        better: ``better(a, b)``: whether point ``a`` beats point ``b`` (``b`` may be None).
        ignore: per strategy name, the qualified names of its ignored modules.
    """

    def __init__(
        self,
        model: nn.Module,
        example_inputs: Any,
        config: SearchConfig,
        store: SearchCheckpoint,
        better: Callable[[SearchPoint, SearchPoint | None], bool],
        ignore: dict[str, list[str]],
    ) -> None:
        self.model, self.inputs, self.config, self.store = model, example_inputs, config, store
        self.better, self.ignore = better, ignore
        self.visited: dict[str, SearchPoint] = {}
        self.plans: dict[str, list[PruningPlan]] = {}
        self.kept: dict[str, tuple[SearchPoint, nn.Module]] = {}  # per strategy: its best
        self.cuts: dict[tuple[str, str, str], str] = {}  # (strategy, kind, signature) -> key
        self.base: Baseline | None = None
        self.target: float | None = None
        self.finisher = Finisher(config.finishing, config.data)
        self._reference = model  # what the step being finished was cut from
        self.cutting = cutting_strategies(config)
        # per step of the candidate being finished: whether recover's model was kept; the
        # metric of the last guarded step; the recorded decisions while replaying a point
        self.recovered: list[bool] = []
        self.measured: float | None = None
        self._decisions: list[bool] | None = None
        # BatchNorm is re-estimated after the cut (the finishing, after compensation, or the
        # caller's after_cut): prune() need not, nor warn that it did not
        later = config.finishing.reestimate_bn or config.after_cut is not None
        self.bn_data: Any = False if later else None

    # ----------------------------------------------------------------- baseline
    def baseline(self) -> Baseline:
        """The unpruned model's cost and metric (from the checkpoint when recorded)."""
        budget, rec = self.config.budget, self.store.baseline
        if rec is not None:
            self.base = Baseline(**rec)
        else:
            work = copy.deepcopy(self.model)
            latency = None
            if budget is not None and budget.metric == "latency":
                latency = self._latency(work)
            metric = score(self.config.metric, work, "on the unpruned model")
            params, macs = count_params(self.model), count_macs(self.model, self.inputs)
            cv = self.cv_mean(work, "on the unpruned model") if self.config.cv_constrains else None
            self.base = Baseline(params, macs, metric, latency, cv)
            self.store.set_baseline(self.base.to_dict())
        if budget is not None:
            self.target = budget.target(self._cost_of(self.base))
            if budget.metric != "latency" and self.target < 1:
                raise ConfigError(
                    f"Budget({budget.metric}={budget.value!r}) resolves to {self.target} of "
                    f"{self._cost_of(self.base):,} {budget.metric}; pass a larger budget"
                )
        return self.base

    def _cost_of(self, p: Baseline | SearchPoint) -> float:
        assert self.config.budget is not None
        metric = self.config.budget.metric
        value = p.latency if metric == "latency" else getattr(p, metric)
        return float(value) if value is not None else math.inf

    def _latency(self, model: nn.Module) -> float:
        budget = self.config.budget
        assert budget is not None and budget.latency_fn is not None
        model.eval()
        value = float(distributed.broadcast_object(float(budget.latency_fn(model))))  # rank 0
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"latency_fn returned {value}; it must return seconds (>= 0)")
        return value

    # ----------------------------------------------------------------- points
    def finish(self, model: nn.Module, step: int) -> nn.Module:
        """Finish a freshly cut model: the search's own finishing (compensation against the
        model this step was cut from, BN re-estimation), then ``after_cut``, then ``recover``
        (guarded: kept only if the metric does not drop; hooks may return a new module)."""
        if step == 1:
            self._reference, self.recovered, self.measured = self.model, [], None
        self.finisher(model, self._reference)
        after_cut = self.config.after_cut
        if after_cut is not None:
            out = after_cut(model)
            model = out if isinstance(out, nn.Module) else model
        model = self._recover(model, step)
        if self.config.schedule_steps > 1 and self.config.finishing.compensate:
            self._reference = copy.deepcopy(model)  # the next step is cut from this model
        return model

    def _recover(self, model: nn.Module, step: int) -> nn.Module:
        """``recover``, guarded by the metric (a replay takes the recorded decisions)."""
        recover, self.measured = self.config.recover, None
        if recover is None:
            return model
        decided = self._decisions[step - 1] if self._decisions is not None else None
        if decided is False:
            self.recovered.append(False)
            return model
        if decided is None and self.config.finishing.guard_recover:
            where = f"before/after recover (step {step})"
            model, kept, self.measured = guarded_recover(
                recover, model, lambda m: score(self.config.metric, m, where)
            )
            self.recovered.append(kept)
            return model
        out = recover(model)
        self.recovered.append(True)
        return out if isinstance(out, nn.Module) else model

    def cv_mean(self, model: nn.Module, where: str) -> float:
        """The mean of the cross-validation metrics on ``model``."""
        folds = self.config.cv_metrics
        assert folds is not None
        values = [score(f, model, f"(cv_metrics[{i}]) {where}") for i, f in enumerate(folds)]
        return sum(values) / len(values)

    def evaluate(
        self, strategy: Strategy, *, ratio: float | None = None, target: int | None = None
    ) -> SearchPoint:
        """Cut at ``ratio`` (or to the budget ``target``), finish, measure; or reuse."""
        budget = self.config.budget
        what = (
            f"r={ratio:.10f}"
            if ratio is not None
            else f"{budget.metric if budget else ''}={target}"
        )
        key = f"evaluated|{strategy.name}|{what}"
        cached = self._cached(key)
        if cached is not None:
            return cached
        start = time.perf_counter()
        cut = self._cut(strategy, ratio, target, self._known(strategy, "evaluated"))
        if not cut.finished:
            return self._duplicate(key, strategy, "evaluated", cut, ratio, start)
        latency = self._latency(cut.model) if budget and budget.metric == "latency" else None
        where = f"for strategy {strategy.name!r} at ratio {cut.ratio:.4f}"
        metric = self.measured  # the guard measured the finished model
        if metric is None:
            metric = score(self.config.metric, cut.model, where)
        cv = None
        if self.config.cv_constrains and self._within_tolerance(metric):
            cv = self.cv_mean(cut.model, where)
        point = self._point(strategy, "evaluated", cut, ratio, metric, latency, start, cv)
        point = _replace(point, recovered=list(self.recovered) or None)
        self._record(key, point, cut)
        kept = self.kept.get(strategy.name)
        if self.better(point, kept[0] if kept else None):
            self.kept[strategy.name] = (point, cut.model)
        return point

    def trial(self, strategy: Strategy, ratio: float) -> SearchPoint:
        """A budget-mode cut at ``ratio``, cost only (no calibration, recovery, metric)."""
        key = f"trial|{strategy.name}|r={ratio:.10f}"
        cached = self._cached(key)
        if cached is not None:
            return cached
        start = time.perf_counter()
        cut = cut_at_ratio(self.model, self.inputs, self.cutting[strategy.name], ratio,
                           ignore=self.ignore[strategy.name], steps=1, finish=lambda m, t: m,
                           seed=self.config.seed, known=self._known(strategy, "trial"),
                           bn_data=self.bn_data)  # fmt: skip
        relabel(cut.plans, self.cutting[strategy.name].importance)
        if not cut.finished:
            return self._duplicate(key, strategy, "trial", cut, ratio, start)
        budget = self.config.budget
        latency = self._latency(cut.model) if budget and budget.metric == "latency" else None
        point = self._point(strategy, "trial", cut, ratio, None, latency, start)
        self._record(key, point, cut, keep_plans=False)
        return point

    def _known(self, strategy: Strategy, kind: str) -> Known:
        return lambda signature: (strategy.name, kind, signature) in self.cuts

    def _duplicate(
        self, key: str, strategy: Strategy, kind: str, cut: Cut, ratio: float | None, start: float
    ) -> SearchPoint:
        """Record a cut equal to a measured one, reusing its measurements."""
        twin = self.visited[self.cuts[(strategy.name, kind, cut.signature)]]
        point = _replace(
            twin, ratio=cut.ratio if ratio is None else ratio, index=len(self.store),
            seconds=time.perf_counter() - start, duplicate_of=twin.index,
        )  # fmt: skip
        self._record(key, point, cut, keep_plans=kind == "evaluated")
        return point

    def _cut(
        self, strategy: Strategy, ratio: float | None, target: int | None, known: Known
    ) -> Cut:
        cfg, ignore = self.config, self.ignore[strategy.name]
        steps, finish, seed = cfg.schedule_steps, self.finish, cfg.seed
        cutting, bn = self.cutting[strategy.name], self.bn_data
        if ratio is not None:
            cut = cut_at_ratio(self.model, self.inputs, cutting, ratio, ignore=ignore,
                               steps=steps, finish=finish, seed=seed, known=known,
                               bn_data=bn)  # fmt: skip
        else:
            assert cfg.budget is not None and target is not None and self.base is not None
            metric, base = cfg.budget.metric, int(self._cost_of(self.base))
            cut = cut_to_target(self.model, self.inputs, cutting, metric, target, base,
                                ignore=ignore, steps=steps, finish=finish, seed=seed,
                                known=known, bn_data=bn)  # fmt: skip
        relabel(cut.plans, cutting.importance)
        return cut

    def _point(
        self,
        strategy: Strategy,
        kind: str,
        cut: Cut,
        ratio: float | None,
        metric: float | None,
        latency: float | None,
        start: float,
        cv_mean: float | None = None,
    ) -> SearchPoint:
        params, macs = count_params(cut.model), count_macs(cut.model, self.inputs)
        asked = cut.ratio if ratio is None else ratio
        point = SearchPoint(strategy.name, kind, asked, params, macs, metric, False, 0.0,
                            latency, len(self.store), cut.ratio, cv_mean=cv_mean)  # fmt: skip
        return _replace(point, satisfied=self.satisfied(point), seconds=time.perf_counter() - start)

    def satisfied(self, p: SearchPoint) -> bool:
        """Whether ``p`` meets the constraint (tolerance: its metric and, with ``cv_metrics``,
        its cross-validated mean, each at most ``tolerance`` below the unpruned model's;
        budget: its cost)."""
        assert self.base is not None
        if self.config.tolerance is not None:
            if p.metric is None or not self._within_tolerance(p.metric):
                return False
            if not self.config.cv_constrains:
                return True
            return (
                p.cv_mean is not None
                and self.base.cv_mean is not None
                and (p.cv_mean >= self.base.cv_mean - self.config.tolerance - 1e-12)
            )
        assert self.target is not None
        return self._cost_of(p) <= self.target

    def _within_tolerance(self, metric: float) -> bool:
        assert self.base is not None and self.config.tolerance is not None
        return metric >= self.base.metric - self.config.tolerance - 1e-12

    def _cached(self, key: str) -> SearchPoint | None:
        rec = self.store.get(key)
        if rec is None:
            return None
        point = SearchPoint.from_dict(rec["point"])
        self.visited[key] = point
        self.plans[key] = [PruningPlan.from_dict(d) for d in rec.get("plans", [])]
        self.cuts.setdefault((point.strategy, point.kind, rec["signature"]), key)
        self._log(point, resumed=True)
        return point

    def _record(self, key: str, point: SearchPoint, cut: Cut, *, keep_plans: bool = True) -> None:
        plans = cut.plans if keep_plans else []
        self.visited[key] = point
        self.plans[key] = plans
        self.cuts.setdefault((point.strategy, point.kind, cut.signature), key)
        record = {
            "point": point.to_dict(),
            "signature": cut.signature,
            "plans": [p.to_dict() for p in plans],
        }
        self.store.put(key, record)
        best = self.best(list(self.visited.values()))
        if best is not None:
            self.store.write("best_plan", {"point": best.to_dict(), "plans": self.plans_dict(best)})
        self._log(point, resumed=False)

    # ----------------------------------------------------------------- choosing
    def best(self, points: Sequence[SearchPoint]) -> SearchPoint | None:
        """The best satisfying evaluated point of ``points`` (``None`` if there is none)."""
        out: SearchPoint | None = None
        for p in points:
            if p.kind == "evaluated" and p.satisfied and self.better(p, out):
                out = p
        return out

    def plans_of(self, point: SearchPoint) -> list[PruningPlan]:
        """The recorded step plans of ``point``."""
        key = next(k for k, p in self.visited.items() if p == point)
        return self.plans[key]

    def plans_dict(self, point: SearchPoint) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.plans_of(point)]

    def model_of(self, point: SearchPoint) -> nn.Module:
        """The finished model of ``point``: kept in memory, or rebuilt from its plans."""
        kept = self.kept.get(point.strategy)
        if kept is not None and kept[0] == point:
            return kept[1]
        self._decisions = point.recovered
        try:
            return replay(self.model, self.inputs, self.plans_of(point), finish=self.finish,
                          seed=self.config.seed)  # fmt: skip
        finally:
            self._decisions = None

    def _log(self, p: SearchPoint, *, resumed: bool) -> None:
        if not self.config.progress:
            return
        base = self.base
        macs = 100.0 * p.macs / max(base.macs, 1) if base else float("nan")
        metric = f"{p.metric:.4f}" if p.metric is not None else "-"
        lat = f"  latency {p.latency:.3g}s" if p.latency is not None else ""
        print(
            f"[search] {p.strategy:<18} {p.kind:<9} ratio {p.ratio:.4f} (cut {p.removed:.4f})  "
            f"MACs {macs:5.1f}%  "
            f"metric {metric}{lat}  {'ok' if p.satisfied else 'no'}  {p.seconds:.1f}s"
            + ("  (from checkpoint)" if resumed else "")
            + (f"  (same cut as point {p.duplicate_of})" if p.duplicate_of is not None else ""),
            file=sys.stderr,
        )


def _replace(point: SearchPoint, **changes: Any) -> SearchPoint:
    return SearchPoint(**{**point.to_dict(), **changes})
