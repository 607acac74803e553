"""``prunekit.analyze``: trace the model, then verify every group by a trial cut.

The dependency engine maps ops by rules; user code can still hard-code a size the engine
cannot see (``reshape(B, N, 3, heads, C // heads)`` with ``C`` the input width). So every
group is *probed*: on a copy, one unit of every group is zeroed and cut, the copy must still
run with the same output shapes, and for exact groups the outputs must not change. Groups
that fail (found by bisection) are frozen with the error as their reason, so nothing the
user prunes later can break the forward pass or, for exact groups, silently change it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .graph.dependency import DependencyGraph, FrozenGroup, Group, build_graph, positions_to_remove
from .graph.tracer import call_model, eval_mode, flatten_tensors
from .surgery import cut
from .surgery.apply import light_copy, zero_slices

__all__ = ["analyze", "probe"]


def analyze(
    model: nn.Module,
    example_inputs: Any,
    *,
    verify: bool = True,
    trace_mode: str = "eval",
    attention: str = "heads",
) -> DependencyGraph:
    """Trace ``model`` with ``example_inputs`` and return its dependency groups.

    Args:
        model: any ``nn.Module``; it is not modified.
        example_inputs: a tensor, a tuple of positional inputs, or a dict of keyword inputs.
        verify: probe every group with a trial cut on a copy and freeze those that break.
        trace_mode: ``"eval"``, or ``"train"`` to include branches that only run in training
            (auxiliary heads); buffers are restored after the trace.
        attention: ``"heads"`` (attention reshapes offer whole heads as units) or
            ``"head_dims"`` (they offer head dims: unit d is dim d of every head).

    Returns:
        The :class:`~prunekit.graph.DependencyGraph`; ``print(graph)`` lists groups, members
        and sizes, and the groups frozen with their reasons.

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> graph = prunekit.analyze(net, torch.randn(1, 4))
        >>> graph.groups[0].num_units
        8
    """
    graph = build_graph(model, example_inputs, mode=trace_mode, attention=attention)
    if verify:
        probe(model, example_inputs, graph)
    return graph


def _outputs(model: nn.Module, inputs: Any) -> list[torch.Tensor]:
    with torch.no_grad(), eval_mode(model):
        return [t.detach() for t in flatten_tensors(call_model(model, inputs))]


def _trial(
    model: nn.Module, inputs: Any, graph: DependencyGraph, groups: list[Group], compare: bool
) -> str | None:
    """Cut the middle unit of each group on a copy; ``None`` if fine, else what went wrong.

    The cut copy runs first: most failures are crashes, which need no reference run. The
    copies share storage with ``model`` (cut and zeroing never write in place).
    """
    removals: dict[tuple[str, int], np.ndarray] = {}
    removed: dict[int, set[int]] = {}
    for g in groups:
        unit = g.num_units // 2
        positions_to_remove(g, [unit], removals)
        removed[g.id] = {unit}
    try:
        work = light_copy(model)
        cut(work, removals, graph, removed)
        after = _outputs(work, inputs)
        del work
    except Exception as exc:  # the probe's purpose: turn a crash into a frozen group
        return f"cutting it breaks the forward pass ({type(exc).__name__}: {str(exc)[:160]})"
    want = [t.shape for t in flatten_tensors(graph.example_output)]
    if [t.shape for t in after] != want:
        return "cutting it changes the model's output shapes"
    if compare:
        zeroed = light_copy(model)
        zero_slices(zeroed, removals)
        before = _outputs(zeroed, inputs)
        for b, a in zip(before, after, strict=True):
            scale = float(b.abs().max()) if b.numel() else 0.0
            if b.is_floating_point() and not torch.allclose(b, a, rtol=1e-4, atol=1e-5 * scale):
                return "cutting a zeroed unit changes the outputs (the code fixes a size)"
    return None


def _bad(
    model: nn.Module, inputs: Any, graph: DependencyGraph, groups: list[Group], compare: bool
) -> dict[int, str]:
    """Groups whose trial cut fails, found by bisection."""
    if not groups:
        return {}
    why = _trial(model, inputs, graph, groups, compare)
    if why is None:
        return {}
    if len(groups) == 1:
        return {groups[0].id: why}
    half = len(groups) // 2
    found = {**_bad(model, inputs, graph, groups[:half], compare)}
    found.update(_bad(model, inputs, graph, groups[half:], compare))
    return found or {g.id: f"{why} (only when cut together)" for g in groups}


def probe(model: nn.Module, example_inputs: Any, graph: DependencyGraph) -> DependencyGraph:
    """Freeze, in place, every group of ``graph`` whose trial cut breaks ``model``."""
    testable = [g for g in graph.groups if g.num_units > 1]
    # exact groups: zero + cut must leave the outputs unchanged (this also proves they run);
    # the others are cut in a separate trial that only has to run with the same shapes
    exact = [g for g in testable if g.exact]
    bad = _bad(model, example_inputs, graph, exact, compare=True)
    rest = [g for g in testable if not g.exact]
    bad.update(_bad(model, example_inputs, graph, rest, compare=False))
    for gid, why in bad.items():
        g = next(x for x in graph.groups if x.id == gid)
        graph.frozen.append(
            FrozenGroup([f"{m.name}:{m.dim}" for m in g.members], g.num_units, why, "unsupported")
        )
    graph.groups = [g for g in graph.groups if g.id not in bad]
    return graph
