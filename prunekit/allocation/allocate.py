"""Choose the units to cut: ratios (local, global, per module), score threshold, caps."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ConfigError
from ..graph.dependency import Group
from .ratio import SCOPES
from .rules import check_fraction, clamp_removal, lowest, module_ratio

__all__ = ["AllocationSpec", "allocate", "check_group_keys", "global_order"]


@dataclass
class AllocationSpec:
    """How many units to cut where (everything but budgets; see ``budget.search_budget``).

    Attributes:
        ratio: fraction of units to remove (``None``: only ``module_ratios``/``threshold``).
        scope: ``"local"`` (the fraction of every group) or ``"global"`` (the lowest
            mean-normalised scores across groups).
        module_ratios: ``{"layer3": 0.6, "features.*": 0.3}``: per-module local ratios by
            name, glob, or parent module (first match wins; others use ``ratio``).
        group_ratios: ``{group key: ratio}`` (keys as :attr:`Group.key`, e.g. from
            :meth:`prunekit.evaluation.Sensitivity.allocate`); wins over ``module_ratios``
            and ``ratio`` for the groups it names.
        threshold: remove every unit whose score is below this (after the criterion's own
            normalisation); combines with ``ratio`` by taking the larger removal.
        max_ratio: remove at most this fraction of any group.
        round_to: kept widths are rounded up to a multiple of this.
        allocator: the registered allocator to use (see
            :func:`~prunekit.allocation.register_allocator`); ``None``: the one the other
            fields need (:func:`~prunekit.allocation.allocator_for`).
    """

    ratio: float | None = None
    scope: str = "local"
    module_ratios: Mapping[str, float] = field(default_factory=dict)
    threshold: float | None = None
    max_ratio: float = 1.0
    round_to: int = 1
    group_ratios: Mapping[str, float] = field(default_factory=dict)
    allocator: str | None = None

    def __post_init__(self) -> None:
        if self.ratio is not None:
            self.ratio = check_fraction("ratio", self.ratio)
        if self.scope not in SCOPES:
            raise ConfigError(f"scope={self.scope!r} is unknown; use one of {SCOPES}")
        self.max_ratio = check_fraction("max_ratio", self.max_ratio, upper_inclusive=True)
        if (
            not isinstance(self.round_to, int)
            or isinstance(self.round_to, bool)
            or self.round_to < 1
        ):
            raise ConfigError(f"round_to={self.round_to!r} must be a positive int (e.g. 8)")
        if not isinstance(self.module_ratios, Mapping):
            raise ConfigError(
                f"module_ratios must map module names/globs to ratios, got {self.module_ratios!r}"
            )
        for pattern, r in self.module_ratios.items():
            check_fraction(f"module_ratios[{pattern!r}]", r)
        if not isinstance(self.group_ratios, Mapping):
            raise ConfigError(
                f"group_ratios must map group keys to ratios, got {self.group_ratios!r}"
            )
        for key, r in self.group_ratios.items():
            check_fraction(f"group_ratios[{key!r}]", r)
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

    def rules(self) -> list[str]:
        """The fields set beyond a plain ratio cut (per-module/per-group ratios, a threshold,
        a cap): a spec with none is served by the ``"ratio"`` allocator.

        Example:
            >>> AllocationSpec(0.5).rules(), AllocationSpec(0.5, threshold=0.1).rules()
            ([], ['threshold'])
        """
        rules = {
            "module_ratios": bool(self.module_ratios),
            "group_ratios": bool(self.group_ratios),
            "threshold": self.threshold is not None,
            "max_ratio": self.max_ratio < 1.0,
        }
        return [name for name, set_ in rules.items() if set_]

    def meta(self) -> dict[str, Any]:
        """The settings a plan records (JSON-serialisable; defaults left out).

        Example:
            >>> AllocationSpec(0.5, max_ratio=0.8).meta()
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
        return meta


def check_group_keys(group_ratios: Mapping[str, float], keys: Iterable[str]) -> None:
    """Every key of ``group_ratios`` must name a prunable group (one of ``keys``).

    Example:
        >>> check_group_keys({"fc.weight:0": 0.5}, ["fc.weight:0"])
        >>> check_group_keys({"fc2.weight:0": 0.5}, ["fc.weight:0"])
        Traceback (most recent call last):
        ...
        prunekit.errors.ConfigError: group_ratios names ['fc2.weight:0'], which are not prunable groups of this model; valid keys: ['fc.weight:0'] (print(prunekit.analyze(model, inputs)) lists them)
    """
    valid = set(keys)
    unknown = [k for k in group_ratios if k not in valid]
    if unknown:
        raise ConfigError(
            f"group_ratios names {unknown[:5]}, which are not prunable groups of this model; "
            f"valid keys: {sorted(valid)[:12]} (print(prunekit.analyze(model, inputs)) lists them)"
        )


def global_order(groups: list[Group], scores: Mapping[int, torch.Tensor]) -> list[tuple[int, int]]:
    """Every (group id, unit) from least to most important by mean-normalised score."""
    keys: list[tuple[float, int, int]] = []
    for g in groups:
        s = scores[g.id].float()
        normed = s / (s.abs().mean() + 1e-12)
        keys.extend((float(v), g.id, u) for u, v in enumerate(normed.tolist()))
    keys.sort()
    return [(gid, u) for _, gid, u in keys]


def _wanted(
    groups: list[Group],
    scores: Mapping[int, torch.Tensor],
    spec: AllocationSpec,
    producers: Mapping[int, list[str]],
) -> dict[int, int]:
    wanted = {g.id: 0 for g in groups}
    if spec.ratio is not None and spec.scope == "global":
        order = global_order(groups, scores)
        for gid, _ in order[: int(spec.ratio * len(order) + 1e-9)]:
            wanted[gid] += 1
    for g in groups:
        r = spec.group_ratios.get(g.key)
        if r is None:
            r = module_ratio(g, producers.get(g.id, []), spec.module_ratios)
        if r is None and spec.ratio is not None and spec.scope == "local":
            r = spec.ratio
        if r is not None:
            wanted[g.id] = int(r * g.num_units + 1e-9)
        if spec.threshold is not None:
            below = int((scores[g.id].float() < float(spec.threshold)).sum())
            wanted[g.id] = max(wanted[g.id], below)
    return wanted


def allocate(
    groups: list[Group],
    scores: Mapping[int, torch.Tensor],
    spec: AllocationSpec,
    producers: Mapping[int, list[str]] | None = None,
) -> dict[int, list[int]]:
    """Unit indices to remove per group id: lowest scores first, after caps and rounding.

    Example:
        >>> import torch
        >>> from prunekit.graph.dependency import Group, Member
        >>> g = Group(0, [Member("fc.weight", 0, [[i] for i in range(4)])], True)
        >>> s = {0: torch.tensor([0.4, 0.1, 0.3, 0.2])}
        >>> allocate([g], s, AllocationSpec(threshold=0.25))
        {0: [1, 3]}
        >>> allocate([g], s, AllocationSpec(ratio=0.75, max_ratio=0.5))
        {0: [1, 3]}
        >>> allocate([g], s, AllocationSpec(ratio=0.5, group_ratios={"fc.weight:0": 0.25}))
        {0: [1]}
    """
    wanted = _wanted(groups, scores, spec, producers or {})
    out: dict[int, list[int]] = {}
    for g in groups:
        n = clamp_removal(
            g.num_units, wanted[g.id], max_ratio=spec.max_ratio, round_to=spec.round_to
        )
        out[g.id] = lowest(scores[g.id].float(), n)
    return out
