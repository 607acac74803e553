"""Choose the units to cut: ratios (local, global, per module), score threshold, caps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from ..errors import ConfigError
from ..graph.dependency import Group
from ..spec import CutSpec
from .rules import clamp_removal, lowest, module_ratio

AllocationSpec = CutSpec
"""The sizing type the allocators receive: :class:`prunekit.spec.CutSpec` (this name stays)."""

__all__ = ["AllocationSpec", "allocate", "check_group_keys", "global_order"]


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
