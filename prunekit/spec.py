"""How much to cut (:class:`CutSpec`) and how to fine-tune by default: one place for each.

Every front end builds these instead of keeping its own copy of the fields and their
defaults: :func:`prunekit.prune` and :class:`prunekit.Pruner` (their keywords build a
:class:`CutSpec`, or take one as ``spec=``), the allocators (they receive it), a schedule
(it ramps it, step by step), :class:`prunekit.search.Strategy` (a criterion and a spec) and
the recipe's ``prune:``/``recovery.finetune:``/``search:`` sections (their defaults are
read from here). This module imports nothing heavy, so a recipe is validated without torch.

The defaults, one per concept:

==================  =========  ==========================================================
concept             default    note
==================  =========  ==========================================================
scope               ``local``  the same fraction of every group (``global``: ranked
                               across groups); a search's *strategies* default to global
max_ratio           ``1.0``    cap per group (``search(max_ratio=)`` is another thing:
                               the largest overall ratio a search tries, 0.95)
round_to            ``1``
streams             ``keep``   model-wide residual streams are left out (see below)
schedule            one step   ``"oneshot"`` (``"one-shot"`` is accepted in recipes)
search steps        8          bisection steps; search max_ratio 0.95
fine-tuning         sgd, 0.01  momentum 0.9, 3 epochs, cosine
==================  =========  ==========================================================
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

__all__ = [
    "renamed",
    "BUDGETS",
    "CutSpec",
    "FINETUNE",
    "FinetuneDefaults",
    "SCOPES",
    "SEARCH_MAX_RATIO",
    "SEARCH_STEPS",
    "STRATEGY_SCOPE",
    "STREAMS",
    "check_fraction",
    "check_target",
    "validate_ratio",
]

SCOPES = ("local", "global")
"""``local``: the same fraction of every group; ``global``: the lowest mean-normalised
scores across groups."""

STREAMS = ("keep", "prune")
"""What a cut does with a model-wide residual stream (see :attr:`CutSpec.streams`)."""

BUDGETS = ("params", "macs")
"""The cost budgets a :class:`CutSpec` can carry (``target_<metric>``). A latency budget is
the slot left for a third one (``target_latency``, met by timing trial cuts); until it
lands, :class:`prunekit.search.Budget` (``latency=``, ``latency_fn=``) is the way."""

STRATEGY_SCOPE = "global"
"""The scope of a :class:`prunekit.search.Strategy` (and a recipe's ``search.strategies``)
when none is given: a search compares criteria ranked across groups, as its budget cuts are."""

SEARCH_STEPS = 8
"""Bisection steps of :func:`prunekit.search.search` (and the recipe's ``search.steps``)."""
SEARCH_MAX_RATIO = 0.95
"""The largest overall ratio a search tries (``search(max_ratio=)``, ``search.max_ratio``)."""


@dataclass(frozen=True)
class FinetuneDefaults:
    """The defaults of :class:`prunekit.recovery.FinetuneConfig` (and of the recipe's
    ``recovery.finetune``): one value per setting, read by both."""

    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    epochs: int = 3
    lr_schedule: str = "cosine"


FINETUNE = FinetuneDefaults()


def renamed(new: str, value: Any, old: str, old_value: Any, where: str) -> Any:
    """``value``, or ``old_value`` given under a keyword's former name ``old`` (with a
    DeprecationWarning); both at once is a ConfigError.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     renamed("bn_data", None, "calibration_data", [1], "prune")
        [1]
        >>> print(seen[0].message)
        prune(calibration_data=...) is now prune(bn_data=...); the old name goes in a later release
    """
    if old_value is None:
        return value
    if value is not None:
        raise ConfigError(f"{where}: pass {new}= (the new name of {old}=), not both")
    warnings.warn(
        f"{where}({old}=...) is now {where}({new}=...); the old name goes in a later release",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value


def check_fraction(name: str, value: object, *, upper_inclusive: bool = False) -> float:
    """``value`` as a float in ``[0, 1)`` (or ``[0, 1]``), else a :class:`ConfigError`.

    Example:
        >>> check_fraction("max_ratio", 1, upper_inclusive=True)
        1.0
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    v = float(value) if ok else -1.0  # type: ignore[arg-type]
    if not ok or not 0.0 <= v <= 1.0 or (v == 1.0 and not upper_inclusive):  # NaN fails
        bound = "]" if upper_inclusive else ")"
        raise ConfigError(f"{name}={value!r} is outside [0, 1{bound}; pass a fraction of units")
    return v


def check_target(metric: str, target: object) -> float:
    """``target`` if it is a positive count (a whole number) or a fraction in (0, 1).

    Example:
        >>> check_target("params", 0.5), check_target("macs", 1e6)
        (0.5, 1000000.0)
        >>> check_target("macs", 1.5)
        Traceback (most recent call last):
        ...
        prunekit.errors.ConfigError: target_macs=1.5 must be a positive count (a whole number), or a fraction in (0, 1) of the unpruned model's cost to keep
    """
    ok = isinstance(target, (int, float)) and not isinstance(target, bool)
    v = float(target) if ok else float("nan")  # type: ignore[arg-type]
    if not (math.isfinite(v) and v > 0 and (v < 1.0 or v == int(v))):
        raise ConfigError(
            f"target_{metric}={target!r} must be a positive count (a whole number), or a "
            "fraction in (0, 1) of the unpruned model's cost to keep"
        )
    return v


def validate_ratio(ratio: object, scope: object = "local", round_to: object = 1) -> None:
    """Check the arguments of a ratio cut: ``ratio`` in [0, 1), a known scope, ``round_to >= 1``.

    Example:
        >>> validate_ratio(0.5, "local", 8)
        >>> validate_ratio(1.5, "local", 1)
        Traceback (most recent call last):
        ...
        prunekit.errors.ConfigError: ratio=1.5 is outside [0, 1); pass the fraction of units to cut
    """
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise ConfigError(f"ratio={ratio!r} is not a number; pass a float in [0, 1), e.g. 0.5")
    if not 0.0 <= float(ratio) < 1.0:
        raise ConfigError(f"ratio={ratio!r} is outside [0, 1); pass the fraction of units to cut")
    _check_choice("scope", scope, SCOPES)
    if not isinstance(round_to, int) or isinstance(round_to, bool) or round_to < 1:
        raise ConfigError(f"round_to={round_to!r} must be a positive int (e.g. 8)")


def _check_choice(name: str, value: object, valid: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in valid:
        raise ConfigError(f"{name}={value!r} is unknown; use one of {valid}")


def _check_ratios(name: str, value: object) -> dict[str, float]:
    if not isinstance(value, Mapping):
        what = "module names/globs" if name == "module_ratios" else "group keys"
        raise ConfigError(f"{name} must map {what} to ratios, got {value!r}")
    return {k: check_fraction(f"{name}[{k!r}]", r) for k, r in value.items()}


@dataclass(frozen=True)
class CutSpec:
    """How much to cut, and where: the one sizing type (validated once, here).

    Size the cut one way: a ``ratio`` (with ``scope``; ``module_ratios``, ``group_ratios``
    and ``threshold`` may refine it), or one budget, ``target_params`` or ``target_macs``
    (a count, or a float in (0, 1): the fraction of the unpruned cost to keep; met by a
    search on a global threshold). A latency budget is the documented free slot
    (:data:`BUDGETS`). A spec that sizes nothing is allowed (a schedule may size it).

    Attributes:
        ratio: fraction of units to remove, in [0, 1).
        scope: ``"local"`` (the fraction of every group) or ``"global"`` (ranked across
            groups by mean-normalised score).
        module_ratios: ``{"layer3": 0.6, "features.*": 0.3}``: per-module local ratios by
            name, glob, or parent module (first match wins; others use ``ratio``).
        threshold: remove every unit whose score is below this (after the criterion's own
            normalisation); combines with ``ratio`` by taking the larger removal.
        max_ratio: remove at most this fraction of any group.
        round_to: kept widths are rounded up to a multiple of this.
        group_ratios: ``{group key: ratio}`` (keys as :attr:`Group.key`, e.g. from
            :meth:`prunekit.evaluation.Sensitivity.allocate`); wins over ``module_ratios``
            and ``ratio`` for the groups it names.
        allocator: a registered allocator name (``None``: the one the fields need, see
            :func:`prunekit.allocation.allocator_for`).
        target_params: a parameter budget (count, or fraction to keep).
        target_macs: a MACs budget, like ``target_params``.
        streams: ``"keep"`` (default) leaves every *model-wide residual stream* out of the
            cut: a group that reaches every block of a numbered stack (``layers.0`` ...
            ``layers.11``) whose blocks are more than half of all the model's numbered
            blocks (:attr:`Group.model_stream`: a transformer's hidden size; not a ResNet
            stage, whose stack holds a third of the blocks). Cutting it narrows every
            block at once (at ``ratio=0.5`` a transformer's accuracy collapses). Ratios,
            thresholds, ``module_ratios`` and budgets skip it; a ``group_ratios`` entry
            naming its key still cuts it (that is asking for it by name). ``"prune"``
            treats it like any other group.

    Example:
        >>> CutSpec(0.5).meta()
        {'ratio': 0.5, 'scope': 'local', 'round_to': 1}
        >>> CutSpec(target_macs=0.5).targets, CutSpec(0.5, threshold=0.1).rules()
        ({'macs': 0.5}, ['threshold'])
        >>> CutSpec(0.5, target_macs=0.5)
        Traceback (most recent call last):
        ...
        prunekit.errors.ConfigError: pass one way to size the cut: ratio/module_ratios/group_ratios/threshold, or target_params, or target_macs (got ratio=0.5, threshold=None, group_ratios={}, targets={'macs': 0.5})
    """

    ratio: float | None = None
    scope: str = "local"
    module_ratios: Mapping[str, float] = field(default_factory=dict)
    threshold: float | None = None
    max_ratio: float = 1.0
    round_to: int = 1
    group_ratios: Mapping[str, float] = field(default_factory=dict)
    allocator: str | None = None
    target_params: float | None = None
    target_macs: float | None = None
    streams: str = "keep"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.ratio is not None:
            validate_ratio(self.ratio, self.scope, self.round_to)
            set_(self, "ratio", float(self.ratio))
        _check_choice("scope", self.scope, SCOPES)
        _check_choice("streams", self.streams, STREAMS)
        set_(self, "max_ratio", check_fraction("max_ratio", self.max_ratio, upper_inclusive=True))
        if (
            not isinstance(self.round_to, int)
            or isinstance(self.round_to, bool)
            or self.round_to < 1
        ):
            raise ConfigError(f"round_to={self.round_to!r} must be a positive int (e.g. 8)")
        set_(self, "module_ratios", _check_ratios("module_ratios", self.module_ratios))
        set_(self, "group_ratios", _check_ratios("group_ratios", self.group_ratios))
        if self.threshold is not None and (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, (int, float))
            or not math.isfinite(self.threshold)
        ):
            raise ConfigError(f"threshold={self.threshold!r} must be a number (a score)")
        if self.allocator is not None and (
            not isinstance(self.allocator, str) or not self.allocator
        ):
            raise ConfigError(
                f"allocator={self.allocator!r} must be a registered allocator name (a string; "
                "prunekit.allocation.available_allocators() lists them) or None"
            )
        targets = {m: v for m in BUDGETS if (v := getattr(self, f"target_{m}")) is not None}
        for metric, value in targets.items():
            check_target(metric, value)
        sized = self.ratio is not None or self.threshold is not None or bool(self.group_ratios)
        if len(targets) > 1 or (targets and sized):
            raise ConfigError(
                "pass one way to size the cut: ratio/module_ratios/group_ratios/threshold, or "
                f"target_params, or target_macs (got ratio={self.ratio}, threshold="
                f"{self.threshold}, group_ratios={dict(self.group_ratios)}, targets={targets})"
            )

    @property
    def targets(self) -> dict[str, float]:
        """The budget, ``{metric: value}`` (empty without one)."""
        return {m: v for m in BUDGETS if (v := getattr(self, f"target_{m}")) is not None}

    @property
    def sized(self) -> bool:
        """Whether the spec says how much to cut (anything besides caps and rounding)."""
        return bool(
            self.ratio is not None
            or self.threshold is not None
            or self.module_ratios
            or self.group_ratios
            or self.targets
        )

    def replace(self, **changes: Any) -> CutSpec:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def budgetless(self) -> CutSpec:
        """The spec without its budget (what the allocator sees)."""
        return self.replace(target_params=None, target_macs=None)

    def rules(self) -> list[str]:
        """The fields set beyond a plain ratio cut (per-module/per-group ratios, a threshold,
        a cap): a spec with none is served by the ``"ratio"`` allocator."""
        rules = {
            "module_ratios": bool(self.module_ratios),
            "group_ratios": bool(self.group_ratios),
            "threshold": self.threshold is not None,
            "max_ratio": self.max_ratio < 1.0,
        }
        return [name for name, set_ in rules.items() if set_]

    def meta(self) -> dict[str, Any]:
        """The settings a plan records (JSON-serialisable; defaults and budgets left out).

        Example:
            >>> CutSpec(0.5, max_ratio=0.8).meta()
            {'ratio': 0.5, 'scope': 'local', 'round_to': 1, 'max_ratio': 0.8}
        """
        meta: dict[str, Any] = {"ratio": self.ratio, "scope": self.scope, "round_to": self.round_to}
        if self.module_ratios:
            meta["module_ratios"] = dict(self.module_ratios)
        if self.group_ratios:
            meta["group_ratios"] = dict(self.group_ratios)
        if self.threshold is not None:
            meta["threshold"] = float(self.threshold)
        if self.max_ratio < 1.0:
            meta["max_ratio"] = self.max_ratio
        if self.allocator is not None:
            meta["allocator"] = self.allocator
        if self.streams != "keep":
            meta["streams"] = self.streams
        return meta
