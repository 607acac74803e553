"""The engine's proof, public so users can run it on their own models.

zero every member slice of some units -> run -> prune those units -> run -> identical.
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from .allocation.rules import check_fraction
from .analysis import analyze
from .checks import check_model
from .conformance import ConformanceReport, check_criterion, check_handler
from .cost import count_params
from .equivalence import ATOL, RTOL, zero_cut_compare
from .errors import ConfigError, ConformanceError, EquivalenceError
from .graph.dependency import positions_to_remove

__all__ = [
    "check_equivalence",
    "EquivalenceReport",
    "check_criterion",
    "check_handler",
    "ConformanceError",
    "ConformanceReport",
]


@dataclass
class EquivalenceReport:
    """How many groups and units :func:`check_equivalence` tested, and the worst error."""

    groups_tested: int
    units_removed: int
    params_removed: int
    max_abs_error: float


def check_equivalence(
    model: nn.Module,
    example_inputs: Any,
    *,
    ratio: float = 0.3,
    seed: int = 0,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> EquivalenceReport:
    """Prove the engine on ``model``: cutting zeroed units must not change any output.

    For every exact group, ``ratio`` of its units (at least one, never all) are picked at
    random; their member slices are zeroed in a copy and the outputs recorded; the same
    units are then removed physically and the outputs must match, and the parameter count
    must drop by exactly the number of zeroed elements. Outputs are compared by the rule of
    :mod:`prunekit.equivalence` (``rtol``; ``atol`` is a fraction of each output's largest
    finite magnitude).

    Raises:
        EquivalenceError: naming the output that differed, or when no group was testable.

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> prunekit.testing.check_equivalence(net, torch.randn(3, 4)).groups_tested
        1
    """
    check_model(model)
    _check_args(ratio, seed, rtol, atol)
    work = copy.deepcopy(model)
    graph = analyze(work, example_inputs)
    rng = np.random.default_rng(seed)
    removals: dict[tuple[str, int], np.ndarray] = {}
    removed_units: dict[int, set[int]] = {}
    for g in graph.groups:
        if not g.exact or g.num_units < 2:
            continue
        k = min(g.num_units - 1, max(1, int(round(ratio * g.num_units))))
        units = sorted(rng.choice(g.num_units, size=k, replace=False).tolist())
        removed_units[g.id] = set(units)
        positions_to_remove(g, units, removals)
    if not removed_units:
        raise EquivalenceError(
            f"{type(model).__name__}: no exact group with at least two units was found, so "
            "nothing could be tested; print(prunekit.analyze(model, example_inputs)) shows why"
        )
    params_before = count_params(work)
    worst, zeroed = zero_cut_compare(
        work, example_inputs, graph, removals, removed_units, rtol=rtol, atol=atol
    )
    removed = params_before - count_params(work)
    if removed != zeroed:
        raise EquivalenceError(
            f"parameter count dropped by {removed}, but {zeroed} parameter elements were "
            "zeroed: some member slice was cut without being a group member (or vice versa)"
        )
    n_units = sum(len(u) for u in removed_units.values())
    return EquivalenceReport(len(removed_units), n_units, removed, worst)


def _check_args(ratio: object, seed: object, rtol: object, atol: object) -> None:
    check_fraction("check_equivalence: ratio", ratio, upper_inclusive=True)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ConfigError(f"check_equivalence: seed={seed!r} must be an int")
    for name, tol in (("rtol", rtol), ("atol", atol)):
        ok = isinstance(tol, (int, float)) and not isinstance(tol, bool)
        if not ok or not 0.0 <= float(tol) < float("inf"):  # type: ignore[arg-type]
            raise ConfigError(
                f"check_equivalence: {name}={tol!r} must be a finite number >= 0 (e.g. 1e-5)"
            )
