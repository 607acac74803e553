"""What a search returns: every point it tried, the baseline, and the chosen model."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from ..plan import PruningPlan

__all__ = ["Baseline", "SearchPoint", "CrossValidation", "SearchResult"]


@dataclass(frozen=True)
class Baseline:
    """The unpruned model: cost and metric (``latency`` only in latency-budget mode).

    ``cv_mean``: the mean of the ``cv_metrics`` folds on the unpruned model (tolerance mode
    with ``cv_metrics``: the floor of every candidate's cross-validated mean is
    ``cv_mean - tolerance``).

    Example:
        >>> Baseline(params=100, macs=400, metric=0.9).to_dict()
        {'params': 100, 'macs': 400, 'metric': 0.9, 'latency': None, 'cv_mean': None}
    """

    params: int
    macs: int
    metric: float
    latency: float | None = None
    cv_mean: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class SearchPoint:
    """One candidate the search built and measured.

    Attributes:
        strategy: the :class:`~prunekit.search.Strategy` name.
        kind: ``"evaluated"`` (cut, calibrated, recovered and scored by ``metric``) or
            ``"trial"`` (a budget-mode cut whose cost alone was measured; ``metric`` is None).
        ratio: the overall ratio asked for (for a cut sized by a MACs/params target, the
            fraction of units it removed).
        params: parameters of the candidate.
        macs: MACs of the candidate on the example inputs.
        metric: the validation metric after calibration and recovery (``None`` for trials).
        satisfied: whether it meets the constraint (tolerance: ``metric >= baseline -
            tolerance``; budget: cost within the budget).
        seconds: wall time to build and measure it.
        latency: ``latency_fn`` of the candidate (latency budgets only).
        index: the order in which it was first measured (stable across resumes).
        removed: the fraction of the analysed units the cut really removed (rounding,
            ``round_to`` and per-group caps make it differ from ``ratio``).
        duplicate_of: ``index`` of an earlier point with exactly the same cut, whose
            measurements this point reuses (finishing is seeded, so they are the same).
        cv_mean: the mean of the ``cv_metrics`` folds on the candidate (tolerance mode, for
            candidates whose ``metric`` is within the tolerance; ``None`` otherwise).
        recovered: per step of the cut, whether ``recover``'s output was kept (``False``:
            recover lowered the metric and the model before it was kept, ``guard_recover``;
            ``None``: no ``recover``, or a trial).

    Example:
        >>> p = SearchPoint("l2-global", "evaluated", 0.5, 10, 40, 0.9, True, 1.5)
        >>> SearchPoint.from_dict(p.to_dict()) == p
        True
    """

    strategy: str
    kind: str
    ratio: float
    params: int
    macs: int
    metric: float | None
    satisfied: bool
    seconds: float
    latency: float | None = None
    index: int = 0
    removed: float = 0.0
    duplicate_of: int | None = None
    cv_mean: float | None = None
    recovered: list[bool] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchPoint:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**data)


@dataclass(frozen=True)
class CrossValidation:
    """The chosen model scored by one metric per fold: mean and sample std (ddof 1).

    Example:
        >>> cv = CrossValidation.of([0.8, 0.9, 1.0])
        >>> round(cv.mean, 6), round(cv.std, 6), str(cv)
        (0.9, 0.1, '0.9000 ± 0.1000 (3 folds)')
    """

    values: list[float]
    mean: float
    std: float

    @classmethod
    def of(cls, values: list[float]) -> CrossValidation:
        """Mean and sample standard deviation (0 for a single fold) of ``values``."""
        n = len(values)
        mean = sum(values) / n
        var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
        return cls(list(values), mean, math.sqrt(var))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f} ({len(self.values)} folds)"


@dataclass
class SearchResult:
    """The outcome of :func:`prunekit.search.search`.

    Attributes:
        model: the chosen pruned, calibrated and recovered model (in eval mode).
        best: the chosen :class:`SearchPoint`.
        plan: its cut (a :class:`~prunekit.PruningPlan`; a list of steps for
            ``schedule_steps > 1``); replay it
            on the unpruned model, then recover, to rebuild ``model``.
        points: every point tried, in the order first measured.
        baseline: the unpruned model's cost and metric.
        mode: ``"tolerance"`` or ``"budget"``.
        constraint: the tolerance or budget, as given.
        strategies: the strategies compared, by name, as dicts.
        cv: the chosen model's cross-validated metric, when ``cv_metrics`` was given.
        notes: things the user should know (non-monotone metric, unreachable budgets).
        seconds: wall time of the whole search (this run; resumed points cost nothing).
        default_strategies: whether ``strategies`` are the search's defaults (none given).
        finishing: what every candidate went through before ``metric``
            (:meth:`prunekit.search.defaults.Finishing.to_dict`: ``compensate``,
            ``reestimate_bn``, why, and the ``order`` of the steps).
    """

    model: nn.Module
    best: SearchPoint
    plan: PruningPlan
    points: list[SearchPoint]
    baseline: Baseline
    mode: str
    constraint: dict[str, Any]
    strategies: list[dict[str, Any]] = field(default_factory=list)
    cv: CrossValidation | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    default_strategies: bool = False
    finishing: dict[str, Any] = field(default_factory=dict)

    @property
    def tried(self) -> list[str]:
        """The names of the strategies compared, in order."""
        return [str(s["name"]) for s in self.strategies]

    def curve(self) -> dict[str, list[tuple[int, float]]]:
        """Per strategy, the evaluated ``(macs, metric)`` points sorted by MACs (for plots)."""
        out: dict[str, list[tuple[int, float]]] = {}
        for p in self.points:
            if p.metric is not None:
                out.setdefault(p.strategy, []).append((p.macs, p.metric))
        return {k: sorted(v) for k, v in out.items()}

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model, as JSON-serialisable data."""
        return {
            "mode": self.mode,
            "constraint": dict(self.constraint),
            "baseline": self.baseline.to_dict(),
            "best": self.best.to_dict(),
            "plan": self.plan.to_dict(),
            "points": [p.to_dict() for p in self.points],
            "strategies": list(self.strategies),
            "cv": self.cv.to_dict() if self.cv is not None else None,
            "notes": list(self.notes),
            "seconds": self.seconds,
            "default_strategies": self.default_strategies,
            "finishing": dict(self.finishing),
        }

    def __str__(self) -> str:
        base = self.baseline
        cv = any(p.cv_mean is not None for p in self.points)
        lines = [
            f"search ({self.mode}: {self.constraint}); baseline metric {base.metric:.4f}, "
            f"{base.macs:,} MACs, {base.params:,} params",
            f"strategies compared{' (the defaults)' if self.default_strategies else ''}: "
            + ", ".join(self.tried),
        ]
        if self.finishing:
            guard = " (kept where it did not lower the metric)"
            lines.append(
                "every candidate: "
                + " -> ".join(self.finishing.get("order", []))
                + (guard if self.finishing.get("guard_recover") else "")
            )
        lines.append(
            f"{'strategy':24}{'kind':>10}{'ratio':>8}{'cut':>8}{'MACs %':>9}{'params %':>10}"
            f"{'metric':>9}" + (f"{'cv':>9}" if cv else "") + "  ok"
        )
        for p in self.points:
            metric = f"{p.metric:.4f}" if p.metric is not None else "-"
            mark = "*" if p == self.best else ""
            lines.append(
                f"{p.strategy[:23]:24}{p.kind:>10}{p.ratio:>8.3f}{p.removed:>8.3f}"
                f"{100 * p.macs / max(base.macs, 1):>9.1f}{100 * p.params / max(base.params, 1):>10.1f}"
                f"{metric:>9}"
                + (_cv_cell(p.cv_mean) if cv else "")
                + f"  {'yes' if p.satisfied else 'no'}{mark}"
            )
        if self.cv is not None:
            lines.append(f"cross-validated metric of the chosen model: {self.cv}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def _cv_cell(value: float | None) -> str:
    return f"{value:>9.4f}" if value is not None else f"{'-':>9}"
