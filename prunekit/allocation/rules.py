"""Allocation rules shared by every allocator: caps, ``round_to``, per-module ratios."""

from __future__ import annotations

import math
from collections.abc import Mapping
from fnmatch import fnmatchcase

import torch

from ..graph.dependency import Group
from ..spec import check_fraction, validate_ratio

__all__ = [
    "clamp_removal",
    "lowest",
    "module_ratio",
    "check_fraction",
    "validate_ratio",
]  # the checks live in prunekit.spec; re-exported


def clamp_removal(n: int, n_remove: int, *, max_ratio: float = 1.0, round_to: int = 1) -> int:
    """How many of ``n`` units really go: at most ``max_ratio * n``, at least one unit kept,
    and the kept width rounded *up* to a multiple of ``round_to`` (never above ``n``).

    Example:
        >>> clamp_removal(10, 7, round_to=4)  # keep 3 -> 4
        6
        >>> clamp_removal(10, 9, max_ratio=0.5)
        5
    """
    n_remove = min(max(n_remove, 0), math.floor(max_ratio * n + 1e-9))
    keep = max(1, n - n_remove)
    if round_to > 1:
        keep = min(n, math.ceil(keep / round_to) * round_to)
    return n - keep


def lowest(scores: torch.Tensor, count: int) -> list[int]:
    """Indices of the ``count`` lowest scores, sorted (ties: lower index first)."""
    if count <= 0:
        return []
    return sorted(torch.argsort(scores, stable=True)[:count].tolist())


def module_ratio(
    group: Group, producers: list[str], module_ratios: Mapping[str, float]
) -> float | None:
    """The ratio of the first pattern in ``module_ratios`` that names one of the modules
    whose own output units the group holds (exact name, glob, or a parent module).

    Example:
        >>> from prunekit.graph.dependency import Group, Member
        >>> g = Group(0, [Member("layer3.0.conv1.weight", 0, [[0], [1]])], True)
        >>> module_ratio(g, ["layer3.0.conv1"], {"layer2*": 0.2, "layer3": 0.6})
        0.6
    """
    for pattern, ratio in module_ratios.items():
        for name in producers:
            if fnmatchcase(name, pattern) or name.startswith(pattern + "."):
                return check_fraction(f"module_ratios[{pattern!r}]", ratio)
    return None
