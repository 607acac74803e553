"""The engine's proof, public so users can run it on their own models.

zero every member slice of some units -> run -> prune those units -> run -> identical.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .analysis import analyze
from .errors import EquivalenceError
from .evaluation.cost import count_params
from .graph.dependency import positions_to_remove
from .graph.tracer import call_model, eval_mode, flatten_tensors
from .surgery import cut
from .surgery.apply import zero_slices

__all__ = ["check_equivalence", "EquivalenceReport"]


@dataclass
class EquivalenceReport:
    """How many groups and units :func:`check_equivalence` tested, and the worst error."""

    groups_tested: int
    units_removed: int
    params_removed: int
    max_abs_error: float


def _run(model: nn.Module, example_inputs: Any) -> list[torch.Tensor]:
    with torch.no_grad(), eval_mode(model):
        return [t.detach().clone() for t in flatten_tensors(call_model(model, example_inputs))]


def check_equivalence(
    model: nn.Module,
    example_inputs: Any,
    *,
    ratio: float = 0.3,
    seed: int = 0,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> EquivalenceReport:
    """Prove the engine on ``model``: cutting zeroed units must not change any output.

    For every exact group, ``ratio`` of its units (at least one, never all) are picked at
    random; their member slices are zeroed in a copy and the outputs recorded; the same
    units are then removed physically and the outputs must match, and the parameter count
    must drop by exactly the number of zeroed elements.

    Raises:
        EquivalenceError: naming the output that differed, or when no group was testable.

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> prunekit.testing.check_equivalence(net, torch.randn(3, 4)).groups_tested
        1
    """
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
    zeroed = zero_slices(work, removals)
    expected = _run(work, example_inputs)
    params_before = count_params(work)
    cut(work, removals, graph, removed_units)
    got = _run(work, example_inputs)
    worst = _compare(expected, got, rtol, atol, graph, removed_units)
    removed = params_before - count_params(work)
    if removed != zeroed:
        raise EquivalenceError(
            f"parameter count dropped by {removed}, but {zeroed} parameter elements were "
            "zeroed: some member slice was cut without being a group member (or vice versa)"
        )
    n_units = sum(len(u) for u in removed_units.values())
    return EquivalenceReport(len(removed_units), n_units, removed, worst)


def _compare(
    expected: list[torch.Tensor],
    got: list[torch.Tensor],
    rtol: float,
    atol: float,
    graph: Any,
    removed_units: dict[int, set[int]],
) -> float:
    if len(expected) != len(got):
        raise EquivalenceError(f"the pruned model returns {len(got)} tensors, not {len(expected)}")
    worst = 0.0
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        if e.shape != g.shape:
            raise EquivalenceError(f"output {i}: shape {tuple(g.shape)} != {tuple(e.shape)}")
        if not e.is_floating_point():
            if not torch.equal(e, g):
                raise EquivalenceError(f"output {i}: integer outputs differ")
            continue
        err = (e - g).abs().max().item() if e.numel() else 0.0
        worst = max(worst, err)
        scale = e.abs().max().item() if e.numel() else 0.0
        if not torch.allclose(e, g, rtol=rtol, atol=atol * scale):
            groups = ", ".join(graph.groups[gid].key for gid in sorted(removed_units))
            raise EquivalenceError(
                f"output {i} changed after cutting zeroed units (max abs error {err:.3g}); "
                f"groups cut: {groups}"
            )
    return worst
