"""Allocators by name: which units of each group a cut removes.

An allocator is ``fn(groups, scores, spec, modules) -> {group id: sorted unit indices}``
(``modules``: the model's ``named_modules()`` as a dict, for rules that name modules).
Two are built in:

- ``"ratio"``: a plain ratio cut (``spec.ratio`` with ``scope`` and ``round_to``; the fast
  path, one sort);
- ``"rules"``: everything else a spec can say (per-module and per-group ratios, a score
  threshold, the ``max_ratio`` cap), see :func:`~prunekit.allocation.allocate`.

:func:`allocator_for` picks the one a spec needs (its ``allocator`` field, else ``"rules"``
when it sets any rule, else ``"ratio"``). Budgets (``target_params``/``target_macs``) are
met by :func:`~prunekit.allocation.search_budget`, which needs trial cuts and so lives with
the pruner's cost function, not here. An unknown name raises
:class:`~prunekit.errors.RegistryError` listing the valid ones; a duplicate raises too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from ..graph.dependency import Group
from ..registry import Registry
from .allocate import AllocationSpec, allocate
from .candidates import producer_modules
from .ratio import select_units

__all__ = [
    "Allocator",
    "allocator_for",
    "available_allocators",
    "get_allocator",
    "register_allocator",
]

Allocator = Callable[
    [list[Group], Mapping[int, torch.Tensor], AllocationSpec, Mapping[str, nn.Module]],
    dict[int, list[int]],
]

_REGISTRY: Registry[Allocator] = Registry(
    "allocator", "a callable (groups, scores, spec, modules) -> {group id: units to remove}"
)


def register_allocator(name: str, allocator: Allocator, *, override: bool = False) -> str:
    """Register ``allocator`` under ``name`` (a second registration raises unless
    ``override``); returns the key. Select it with ``AllocationSpec(allocator=name)``.

    Example:
        >>> def keep_all(groups, scores, spec, modules):
        ...     return {g.id: [] for g in groups}
        >>> register_allocator("keep_all", keep_all)
        'keep_all'
        >>> register_allocator("keep_all", keep_all)
        Traceback (most recent call last):
        ...
        prunekit.errors.RegistryError: allocator 'keep_all' is already registered; pass override=True to replace it
        >>> _REGISTRY.remove("keep_all")
    """
    return _REGISTRY.register(name, allocator, override=override)


def get_allocator(name: str) -> Allocator:
    """The allocator registered under ``name``.

    Example:
        >>> get_allocator("median")
        Traceback (most recent call last):
        ...
        prunekit.errors.RegistryError: unknown allocator 'median'; valid names: ratio, rules
    """
    return _REGISTRY.get(name)


def available_allocators() -> list[str]:
    """Every registered allocator name, sorted.

    Example:
        >>> available_allocators()
        ['ratio', 'rules']
    """
    return _REGISTRY.names()


def allocator_for(spec: AllocationSpec) -> str:
    """The allocator ``spec`` needs: its ``allocator`` if set, else ``"rules"`` when it sets
    a rule beyond a plain ratio (:attr:`AllocationSpec.rules`), else ``"ratio"``.

    Example:
        >>> allocator_for(AllocationSpec(0.5)), allocator_for(AllocationSpec(0.5, max_ratio=0.8))
        ('ratio', 'rules')
    """
    if spec.allocator is not None:
        return spec.allocator
    return "rules" if spec.rules() else "ratio"


def _ratio(
    groups: list[Group],
    scores: Mapping[int, torch.Tensor],
    spec: AllocationSpec,
    modules: Mapping[str, nn.Module],
) -> dict[int, list[int]]:
    if spec.ratio is None:
        return {g.id: [] for g in groups}
    return select_units(
        groups, dict(scores), ratio=float(spec.ratio), scope=spec.scope, round_to=spec.round_to
    )


def _rules(
    groups: list[Group],
    scores: Mapping[int, torch.Tensor],
    spec: AllocationSpec,
    modules: Mapping[str, nn.Module],
) -> dict[int, list[int]]:
    producers = {g.id: producer_modules(g, dict(modules)) for g in groups}
    return allocate(groups, scores, spec, producers)


register_allocator("ratio", _ratio)
register_allocator("rules", _rules)
