"""What a search compares and under which constraint: :class:`Strategy` and :class:`Budget`.

A :class:`Strategy` is one way to cut a model at a given overall ratio: a criterion and a
:class:`~prunekit.spec.CutSpec` (local, global, per-module ratios, caps, or a measured
sensitivity); :meth:`Strategy.spec` is that spec at a ratio. A :class:`Budget`
is a cost limit (MACs, parameters, or latency measured by a user function).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..errors import ConfigError
from ..evaluation.sensitivity import Sensitivity
from ..importance import Importance, get_importance
from ..spec import STRATEGY_SCOPE, CutSpec, check_fraction

__all__ = ["Budget", "Strategy", "LatencyFn"]

LatencyFn = Callable[[nn.Module], float]


def _fraction(name: str, value: object, *, closed: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    v = float(value) if ok else math.nan  # type: ignore[arg-type]
    if not (0.0 <= v <= 1.0) or (v == 1.0 and not closed):
        raise ConfigError(f"{name}={value!r} must be a fraction in [0, 1{']' if closed else ')'}")
    return v


def _positive(name: str, value: object) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or float(value) <= 0:  # type: ignore[arg-type]
        raise ConfigError(f"Budget({name}={value!r}): the budget must be a positive number")
    return float(value)  # type: ignore[arg-type]


def importance_name(importance: str | Importance) -> str:
    """A stable name for a criterion: the registry name, or the object's class name."""
    if isinstance(importance, str):
        return importance
    cls = type(importance)
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class Strategy:
    """One way to cut a model at an overall ratio ``r`` (fraction of units removed).

    Args:
        name: unique label in reports (default: ``"<importance>-<scope>"``).
        importance: a criterion name (``"l2"``, ``"l1"``, ``"random"`` ...) or object.
        scope: ``"global"`` (default, :data:`prunekit.spec.STRATEGY_SCOPE`: units ranked
            across groups) or ``"local"`` (``r`` of every group).
        module_ratios: fixed per-module ratios (names or globs) that override ``r``.
        round_to: kept widths are rounded up to a multiple of this.
        ignore: modules of the searched model, or their names, whose own units are kept.
        max_ratio: remove at most this fraction of any group (the spec's ``max_ratio``;
            ``search(max_ratio=)`` is the largest overall ratio tried, another thing).
        max_group_ratio: deprecated name of ``max_ratio``.
        sensitivity: a measured :class:`~prunekit.evaluation.Sensitivity`; at ratio ``r`` the
            groups get ``sensitivity.allocate(r).group_ratios`` (see :meth:`from_sensitivity`).

    Example:
        >>> Strategy().name, Strategy(importance="l1", scope="local").name
        ('l2-global', 'l1-local')
        >>> Strategy("wide", module_ratios={"fc*": 0.2}).to_dict()["module_ratios"]
        {'fc*': 0.2}
    """

    name: str = ""
    importance: str | Importance = "l2"
    scope: str = STRATEGY_SCOPE
    module_ratios: Mapping[str, float] | None = None
    round_to: int = 1
    ignore: tuple[Any, ...] = ()
    max_ratio: float = 1.0
    sensitivity: Sensitivity | None = field(default=None, repr=False)
    max_group_ratio: float | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_group_ratio is not None:
            warnings.warn(
                "Strategy(max_group_ratio=) is deprecated: it is max_ratio=, as in prune()",
                DeprecationWarning,
                stacklevel=3,
            )
            value = check_fraction("Strategy max_group_ratio", self.max_group_ratio,
                                   upper_inclusive=True)  # fmt: skip
            object.__setattr__(self, "max_ratio", value)
            object.__setattr__(self, "max_group_ratio", None)
        try:  # the one validator of the sizing fields
            self.spec(None)
        except ConfigError as exc:
            raise ConfigError(f"Strategy: {exc}") from None
        if not isinstance(self.importance, str) and not callable(self.importance):
            raise ConfigError(
                f"Strategy importance={self.importance!r} must be a criterion name or object"
            )
        get_importance(self.importance)  # an unknown name raises, listing the valid ones
        if self.sensitivity is not None and self.module_ratios:
            raise ConfigError(
                "a Strategy takes sensitivity= or module_ratios=, not both; the sensitivity "
                "allocation already sets every measured group's ratio"
            )
        object.__setattr__(self, "ignore", tuple(self.ignore))
        if not self.name:
            kind = "sensitivity" if self.sensitivity is not None else self.scope
            object.__setattr__(self, "name", f"{importance_name(self.importance)}-{kind}")

    @classmethod
    def from_sensitivity(
        cls, sensitivity: Sensitivity, *, name: str = "", round_to: int = 1, ignore: Any = ()
    ) -> Strategy:
        """Cut each group by the ratio a measured sensitivity allocates at the overall ratio.

        The criterion is the one the sensitivity was measured with (``sensitivity.meta``).

        Example:
            >>> from prunekit.evaluation import Sensitivity
            >>> s = Sensitivity(1.0, [0.5], {"a": 4}, {"a": ["fc"]}, {"a": {0.5: 0.9}},
            ...                 {"a": {0.5: 2}}, {"importance": "l1"})
            >>> st = Strategy.from_sensitivity(s)
            >>> st.name, st.importance, st.group_ratios(0.25), st.max_search_ratio(0.95)
            ('l1-sensitivity', 'l1', {'a': 0.25}, 0.5)
        """
        if not isinstance(sensitivity, Sensitivity):
            raise ConfigError(
                f"from_sensitivity needs a prunekit.evaluation.Sensitivity, got "
                f"{type(sensitivity).__name__}; measure one with analyze_sensitivity(...)"
            )
        importance = str(sensitivity.meta.get("importance", "l2"))
        return cls(name, importance, "global", None, round_to, tuple(ignore), 1.0, sensitivity)

    def spec(self, ratio: float | None) -> CutSpec:
        """The :class:`~prunekit.spec.CutSpec` of this strategy at overall ``ratio``
        (sensitivity strategies: the per-group ratios it allocates there).

        Example:
            >>> Strategy(scope="local", round_to=4).spec(0.5).meta()
            {'ratio': 0.5, 'scope': 'local', 'round_to': 4}
        """
        groups = self.group_ratios(ratio) if ratio is not None else None
        if groups is not None:
            return CutSpec(group_ratios=groups, round_to=self.round_to, max_ratio=self.max_ratio)
        return CutSpec(ratio, self.scope, dict(self.module_ratios or {}), None, self.max_ratio,
                       self.round_to)  # fmt: skip

    def group_ratios(self, ratio: float) -> dict[str, float] | None:
        """Per-group ratios at overall ``ratio`` (sensitivity strategies), else ``None``."""
        if self.sensitivity is None:
            return None
        return dict(self.sensitivity.allocate(ratio).group_ratios)

    def max_search_ratio(self, max_ratio: float) -> float:
        """The largest overall ratio this strategy can be asked for, at most ``max_ratio``.

        A sensitivity allocation never extrapolates past the largest measured cut.
        """
        sens = self.sensitivity
        if sens is None:
            return max_ratio
        reach = sum(max(sens.removed[k].values(), default=0) for k in sens.metrics)
        total = sum(sens.sizes[k] for k in sens.metrics)
        return min(max_ratio, reach / max(total, 1))

    @property
    def is_plain_global(self) -> bool:
        """Global ranking with nothing else: a MACs/params budget is met by ``prune`` itself."""
        return self.scope == "global" and not self.module_ratios and self.sensitivity is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (modules in ``ignore`` appear by class name)."""
        sens = self.sensitivity
        return {
            "name": self.name,
            "importance": importance_name(self.importance),
            "scope": self.scope,
            "module_ratios": dict(self.module_ratios) if self.module_ratios else None,
            "round_to": self.round_to,
            "ignore": [i if isinstance(i, str) else type(i).__name__ for i in self.ignore],
            "max_group_ratio": self.max_ratio,  # the recorded key stays (checkpoints)
            "sensitivity": sens.to_dict() if sens is not None else None,
        }


@dataclass(frozen=True)
class Budget:
    """A cost limit: exactly one of ``macs``, ``params`` or ``latency``.

    ``macs`` and ``params`` follow :func:`prunekit.prune`'s ``target_macs``: a float in
    ``(0, 1)`` is the fraction of the unpruned cost to keep, a number >= 1 an absolute
    count. ``latency`` is in seconds, as returned by ``latency_fn(model)``, which the search
    calls on candidate models (pruned, before recovery: weights do not change the cost).

    Example:
        >>> Budget(macs=0.5).metric, Budget(macs=0.5).target(1000)
        ('macs', 500)
        >>> Budget(params=300).target(1000)
        300
        >>> Budget(latency=0.002, latency_fn=lambda m: 0.001).target(0.004)
        0.002
    """

    macs: float | None = None
    params: float | None = None
    latency: float | None = None
    latency_fn: LatencyFn | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        given = {k: v for k, v in self._values().items() if v is not None}
        if len(given) != 1:
            raise ConfigError(
                f"Budget needs exactly one of macs=, params=, latency= (got {given or 'none'}); "
                "e.g. Budget(macs=0.5) keeps half the MACs"
            )
        ((name, value),) = given.items()
        _positive(name, value)
        if name == "latency" and not callable(self.latency_fn):
            raise ConfigError(
                "Budget(latency=...) needs latency_fn=, a callable model -> seconds (e.g. the "
                "median of timed forward passes on your target input)"
            )

    def _values(self) -> dict[str, float | None]:
        return {"macs": self.macs, "params": self.params, "latency": self.latency}

    @property
    def metric(self) -> str:
        """``"macs"``, ``"params"`` or ``"latency"``."""
        return next(k for k, v in self._values().items() if v is not None)

    @property
    def value(self) -> float:
        """The budget as given."""
        out = self._values()[self.metric]
        assert out is not None  # guaranteed by __post_init__
        return float(out)

    def target(self, baseline: float) -> float:
        """The absolute limit for an unpruned cost of ``baseline`` (an int for counts)."""
        if self.metric == "latency":
            return self.value
        given = self._values()[self.metric]
        if isinstance(given, float) and given < 1.0:
            return int(given * baseline)
        return int(self.value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (``latency_fn`` by name)."""
        fn = self.latency_fn
        return {
            "metric": self.metric,
            "value": self.value,
            "latency_fn": getattr(fn, "__qualname__", type(fn).__name__) if fn else None,
        }
