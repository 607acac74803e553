"""Validation of :func:`prunekit.search.search`'s arguments (every error names the value
and the fix)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import ConfigError
from .spec import Strategy

__all__ = ["check_folds", "check_strategies", "ignore_names", "is_number"]

Metric = Callable[[nn.Module], float]


def is_number(value: Any, ok: Callable[[float], bool]) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(float(value)) and ok(float(value))


def check_strategies(strategies: Any) -> tuple[Strategy, ...]:
    chosen = (Strategy(),) if strategies is None else tuple(strategies)
    bad = [s for s in chosen if not isinstance(s, Strategy)]
    if not chosen or bad:
        raise ConfigError(
            f"strategies must be a non-empty list of prunekit.search.Strategy, got {strategies!r}"
        )
    names = [s.name for s in chosen]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"strategy names must be unique; {twice} appear twice: pass name=")
    return chosen


def check_folds(cv_metrics: Any) -> list[Metric] | None:
    if cv_metrics is None:
        return None
    folds = list(cv_metrics)
    if not folds or not all(callable(f) for f in folds):
        raise ConfigError(
            f"cv_metrics={cv_metrics!r} must be a non-empty list of callables model -> float, "
            "one per fold"
        )
    return folds


def ignore_names(model: nn.Module, strategy: Strategy) -> list[str]:
    """The strategy's ``ignore`` as qualified names (modules are found in ``model``)."""
    names = {id(m): n for n, m in model.named_modules()}
    out = []
    for item in strategy.ignore:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, nn.Module) and id(item) in names:
            out.append(names[id(item)])
        else:
            raise ConfigError(
                f"strategy {strategy.name!r}: ignore item {item!r} is not a submodule of the "
                "searched model nor a module name; pass modules of this model or their names"
            )
    return out
