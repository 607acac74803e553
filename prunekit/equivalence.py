"""The engine's invariant, written once: zero some units -> run -> cut them -> run -> compare.

Cutting units whose member slices are all zero must leave an exact group's function
unchanged. The analysis probe (:func:`prunekit.analyze`), the post-cut check of
:func:`prunekit.prune` (``verify="exact"``) and :func:`prunekit.testing.check_equivalence`
all compare by the one rule here.

The tolerance rule: float outputs ``got`` match ``want`` when
``|got - want| <= ATOL * scale + RTOL * |want|`` elementwise, with ``scale`` the largest
finite magnitude of ``want`` (a cut reorders sums, so rounding moves with the output's size);
NaN and infinity must sit at the same places with the same sign; integer and bool outputs
must be equal; shapes and the number of output tensors must be equal. A mismatch raises
:class:`~prunekit.errors.EquivalenceError` naming the output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ._modelio import run_outputs
from .errors import EquivalenceError
from .graph.dependency import DependencyGraph
from .surgery import cut
from .surgery.apply import zero_slices

__all__ = ["ATOL", "RTOL", "compare_outputs", "outputs_close", "zero_cut_compare", "zeroed_outputs"]

RTOL = 1e-4
"""Relative tolerance of the equivalence rule."""
ATOL = 1e-5
"""Absolute tolerance, as a fraction of the reference output's largest finite magnitude."""

Removals = Mapping[tuple[str, int], np.ndarray]


def _finite_scale(t: torch.Tensor) -> float:
    finite = t[torch.isfinite(t)]
    return float(finite.abs().max()) if finite.numel() else 0.0


def compare_outputs(
    want: list[torch.Tensor], got: list[torch.Tensor], *, rtol: float = RTOL, atol: float = ATOL
) -> float:
    """Check ``got`` against ``want`` by the tolerance rule; return the largest absolute
    error over the finite float entries.

    Raises:
        EquivalenceError: naming the output that differs (count, shape, values).

    Example:
        >>> a = [torch.tensor([1.0, 2.0])]
        >>> compare_outputs(a, [torch.tensor([1.0, 2.00001])]) < 1e-4
        True
        >>> compare_outputs(a, [torch.tensor([1.0, 2.1])])
        Traceback (most recent call last):
        ...
        prunekit.errors.EquivalenceError: output 0 changed (max abs error 0.1, allowed 2e-05 + 0.0001 * |value|)
    """
    if len(want) != len(got):
        raise EquivalenceError(f"the model returns {len(got)} output tensors, not {len(want)}")
    worst = 0.0
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        if w.shape != g.shape:
            raise EquivalenceError(f"output {i}: shape {tuple(g.shape)} != {tuple(w.shape)}")
        if not w.numel():
            continue
        if not w.is_floating_point():
            if not torch.equal(w, g):
                raise EquivalenceError(f"output {i}: the integer outputs differ")
            continue
        g = g.to(w.dtype)
        scale = _finite_scale(w)
        both = torch.isfinite(w) & torch.isfinite(g)
        err = float((w - g).abs()[both].max()) if bool(both.any()) else 0.0
        worst = max(worst, err)
        if not torch.allclose(w, g, rtol=rtol, atol=atol * scale, equal_nan=True):
            raise EquivalenceError(
                f"output {i} changed (max abs error {err:.3g}, allowed {atol * scale:.3g} + "
                f"{rtol:g} * |value|)"
            )
    return worst


def outputs_close(
    want: list[torch.Tensor], got: list[torch.Tensor], *, rtol: float = RTOL, atol: float = ATOL
) -> bool:
    """Whether ``got`` matches ``want`` by the tolerance rule (:func:`compare_outputs`).

    Example:
        >>> outputs_close([torch.ones(2)], [torch.ones(2)]), outputs_close([torch.ones(2)], [torch.zeros(2)])
        (True, False)
    """
    try:
        compare_outputs(want, got, rtol=rtol, atol=atol)
    except EquivalenceError:
        return False
    return True


def zeroed_outputs(model: nn.Module, inputs: Any, removals: Removals) -> list[torch.Tensor]:
    """Zero the ``removals`` slices of ``model`` (out of place: new tensors, nothing shared is
    written) and return its outputs on ``inputs``, cloned (the reference of a comparison)."""
    return _zeroed(model, inputs, removals)[0]


def _zeroed(model: nn.Module, inputs: Any, removals: Removals) -> tuple[list[torch.Tensor], int]:
    count = zero_slices(model, dict(removals))
    return [t.clone() for t in run_outputs(model, inputs)], count


def zero_cut_compare(
    model: nn.Module,
    inputs: Any,
    graph: DependencyGraph,
    removals: Removals,
    removed_units: dict[int, set[int]],
    *,
    run: Any = run_outputs,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> tuple[float, int]:
    """The invariant on ``model``, in place: zero the removed slices, run, cut the units,
    run again with ``run(model, inputs)`` (which may raise its own error for a crash or a
    changed shape), and compare.

    Returns:
        The largest absolute error, and how many parameter elements were zeroed.

    Raises:
        EquivalenceError: the cut changed the outputs (the message names the groups cut).
    """
    want, zeroed = _zeroed(model, inputs, removals)
    cut(model, dict(removals), graph, removed_units)
    got = run(model, inputs)
    try:
        return compare_outputs(want, got, rtol=rtol, atol=atol), zeroed
    except EquivalenceError as exc:
        keys = {g.id: g.key for g in graph.groups}
        groups = ", ".join(keys.get(gid, str(gid)) for gid in sorted(removed_units))
        raise EquivalenceError(
            f"cutting zeroed units changed the outputs: {exc}; groups cut: {groups}"
        ) from None
