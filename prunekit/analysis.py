"""``prunekit.analyze``: trace the model, then probe every group by a trial cut.

The dependency engine maps ops by rules; user code can still hard-code a size the engine
cannot see (``reshape(B, N, 3, heads, C // heads)`` with ``C`` the input width). So every
group is *probed*: on a copy, one unit of every group is zeroed and cut, the copy must still
run with the same output shapes, and for exact groups the outputs must not change. Groups
that fail (found by bisection) are frozen with the error as their reason, so nothing the
user prunes later can break the forward pass or, for exact groups, silently change it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ._modelio import flatten_tensors, run_outputs
from .checks import check_finite_outputs, check_model
from .equivalence import compare_outputs, outputs_close, zeroed_outputs
from .errors import ConfigError, EquivalenceError
from .graph.dependency import DependencyGraph, FrozenGroup, Group, build_graph, positions_to_remove
from .surgery import cut
from .surgery.apply import light_copy, own_written

__all__ = ["analyze", "analyze_copy", "outputs_close", "probe", "probe_groups"]


def analyze(
    model: nn.Module,
    example_inputs: Any,
    *,
    probe: bool = True,
    trace_mode: str = "eval",
    attention: str = "heads",
    verify: bool | None = None,
) -> DependencyGraph:
    """Trace ``model`` with ``example_inputs`` and return its dependency groups.

    Args:
        model: any ``nn.Module``; it is not modified (the trace and the probes run on a
            copy with its own buffers, so a forward that writes state writes the copy's).
        example_inputs: a tensor, a tuple of positional inputs, or a dict of keyword inputs.
        probe: probe every group with a trial cut on a copy and freeze those that break.
        trace_mode: ``"eval"``, or ``"train"`` to include branches that only run in training
            (auxiliary heads); buffers are restored after the trace.
        attention: ``"heads"`` (attention reshapes offer whole heads as units) or
            ``"head_dims"`` (they offer head dims: unit d is dim d of every head).
        verify: deprecated alias of ``probe`` (``prune(verify=...)`` names the post-cut
            check, a different thing); passing it warns with a DeprecationWarning.

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
    probe = _probe_flag(probe, verify, stacklevel=3)
    check_model(model)
    # the trace and the probes run on a copy: the model's forward may write its own state
    return analyze_copy(
        light_copy(model), example_inputs, probe=probe, trace_mode=trace_mode,
        attention=attention,
    )  # fmt: skip


def _probe_flag(probe: bool, verify: bool | None, *, stacklevel: int) -> bool:
    """``probe``, or the deprecated ``verify`` keyword in its place (with a warning)."""
    if verify is None:
        return probe
    if probe is not True:
        raise ConfigError(
            f"analyze: pass probe={probe!r} alone; verify={verify!r} is its deprecated alias"
        )
    warnings.warn(
        "analyze(verify=...) is deprecated: it means the trial-cut probe, so it is now "
        f"analyze(probe=...); pass probe={bool(verify)!r} (prune(verify=...) is the post-cut check)",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return bool(verify)


def analyze_copy(
    work: nn.Module,
    example_inputs: Any,
    *,
    probe: bool = True,
    trace_mode: str = "eval",
    attention: str = "heads",
) -> DependencyGraph:
    """:func:`analyze` on ``work``, a :func:`~prunekit.surgery.apply.light_copy` the caller
    owns: the graph's tensors are ``work``'s. The trace (the first forward) runs on private
    clones of the parameters, and ``work`` keeps those the forward wrote, so nothing ever
    writes into the model ``work`` was copied from."""
    with own_written(work):
        graph = build_graph(work, example_inputs, mode=trace_mode, attention=attention)
    params = dict(work.named_parameters())
    for name in graph.tensors:
        if name in params:
            graph.tensors[name] = params[name]
    graph.example_output = _detached(graph.example_output)
    check_finite_outputs(flatten_tensors(graph.example_output), flatten_tensors(example_inputs))
    if probe:
        probe_groups(work, example_inputs, graph)
    return graph


def _detached(obj: Any) -> Any:
    """``obj`` with every tensor detached (the trace ran with autograd on; its graph would
    keep the parameter clones of the trace alive)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, dict):
        for k in list(obj):
            obj[k] = _detached(obj[k])
        return obj
    if isinstance(obj, list):
        obj[:] = [_detached(v) for v in obj]
        return obj
    if isinstance(obj, tuple):
        items = [_detached(v) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    return obj


def _trial(
    model: nn.Module, inputs: Any, graph: DependencyGraph, groups: list[Group], compare: bool
) -> str | None:
    """Cut the middle unit of each group on a copy; ``None`` if fine, else what went wrong.

    The cut copy runs first: most failures are crashes, which need no reference run. The
    copies share storage with ``model`` (cut and zeroing never write in place). With
    ``compare``, the zeroed copy's outputs must match by the rule of
    :mod:`prunekit.equivalence`.
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
        after = run_outputs(work, inputs)
        del work
    except Exception as exc:  # the probe's purpose: turn a crash into a frozen group
        return f"cutting it breaks the forward pass ({type(exc).__name__}: {str(exc)[:160]})"
    want = [t.shape for t in flatten_tensors(graph.example_output)]
    if [t.shape for t in after] != want:
        return "cutting it changes the model's output shapes"
    if compare:
        try:
            compare_outputs(zeroed_outputs(light_copy(model), inputs, removals), after)
        except EquivalenceError:
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


def probe_groups(model: nn.Module, example_inputs: Any, graph: DependencyGraph) -> DependencyGraph:
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


probe = probe_groups
"""The former name of :func:`probe_groups` (``analyze``'s ``probe`` keyword shadows it)."""
