"""The validated settings of one search (:class:`SearchConfig`) and the strategies its cuts
use (:func:`cutting_strategies`: data-driven scores shared across candidates)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from .checkpoint import inputs_fingerprint, model_fingerprint
from .defaults import Finishing
from .scores import SharedScores
from .spec import Budget, Strategy

__all__ = ["SearchConfig", "cutting_strategies"]

Metric = Callable[[nn.Module], float]
Hook = Callable[[nn.Module], Any]


def _hook_name(fn: Any) -> str | None:
    return None if fn is None else getattr(fn, "__qualname__", type(fn).__name__)


@dataclass(frozen=True)
class SearchConfig:
    """The validated arguments of :func:`prunekit.search.search` (see there)."""

    metric: Metric
    tolerance: float | None
    budget: Budget | None
    strategies: tuple[Strategy, ...]
    recover: Hook | None
    after_cut: Hook | None
    steps: int
    max_ratio: float
    schedule_steps: int
    seed: int
    progress: bool
    finishing: Finishing = Finishing(False, False)
    data: Any = None
    cv_metrics: tuple[Metric, ...] | None = None

    @property
    def mode(self) -> str:
        return "tolerance" if self.tolerance is not None else "budget"

    def constraint(self) -> dict[str, Any]:
        if self.budget is not None:
            return {"budget": self.budget.to_dict()}
        return {"tolerance": self.tolerance}

    def settings(self, model: nn.Module, example_inputs: Any) -> dict[str, Any]:
        """Everything that decides which points are measured and what they measure.

        Functions cannot be compared; ``metric``, ``recover`` and ``after_cut`` enter by
        name only, so changing what they do needs a fresh checkpoint directory. (``after_cut``
        is stored under its former name ``"calibrate"``, so older checkpoints still match.)
        """
        return {
            "model": model_fingerprint(model),
            "inputs": inputs_fingerprint(example_inputs),
            **self.constraint(),
            "strategies": [s.to_dict() for s in self.strategies],
            "metric": _hook_name(self.metric),
            "recover": _hook_name(self.recover),
            "calibrate": _hook_name(self.after_cut),
            "steps": self.steps,
            "max_ratio": self.max_ratio,
            "schedule_steps": self.schedule_steps,
            "seed": self.seed,
            **self._extra_settings(),
        }

    def _extra_settings(self) -> dict[str, Any]:
        """Settings recorded only when used (checkpoints written without them still match)."""
        out: dict[str, Any] = {}
        guarded = self.finishing.guard_recover and self.recover is not None
        if self.finishing.active or guarded:
            out["finishing"] = self.finishing.to_dict()
        if self.cv_metrics is not None and self.tolerance is not None:
            out["cv_metrics"] = [_hook_name(f) for f in self.cv_metrics]
        return out

    @property
    def cv_constrains(self) -> bool:
        """Whether the folds constrain the choice (tolerance mode), not only report on it."""
        return self.cv_metrics is not None and self.tolerance is not None


def cutting_strategies(config: SearchConfig) -> dict[str, Strategy]:
    """Per strategy name, the strategy the cuts use: with one-step cuts, a data-driven
    criterion scores once per search and every candidate reuses its scores
    (:class:`~prunekit.search.scores.SharedScores`; strategies sharing a criterion object
    share them too)."""
    out: dict[str, Strategy] = {}
    shared: dict[int, SharedScores] = {}
    for s in config.strategies:
        imp = s.importance
        if config.schedule_steps > 1 or not getattr(imp, "requires_data", False):
            out[s.name] = s
            continue
        wrapper = shared.setdefault(id(imp), SharedScores(imp))
        out[s.name] = dataclasses.replace(s, importance=wrapper)
    return out
