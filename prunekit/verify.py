"""Checks that a cut model is sound: it runs, keeps its output shapes, and (optionally)
computes exactly what the model with the same units zeroed computes.

``verify="exact"`` (the default of :func:`prunekit.prune`) proves every exact group
numerically: the cut model's outputs must equal those of the uncut model with the removed
units' slices zeroed (two real forwards). ``verify="shapes"`` only runs the cut model once,
on the meta device when it can (shapes only, no arithmetic), else on the real inputs: it
misses code that silently reads a stale size (torchvision's Swin computes its head size from
the input width: a head cut runs, with the wrong head size).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from ._modelio import call_model, eval_mode, flatten_tensors
from .analysis import _trial
from .equivalence import zero_cut_compare
from .errors import ConfigError, EquivalenceError
from .graph.dependency import DependencyGraph
from .plan import PruningPlan
from .surgery import cut

__all__ = ["VERIFY_MODES", "check_verify", "verified_cut", "check_runs"]

VERIFY_MODES = ("shapes", "exact")


def check_verify(verify: str) -> str:
    """``verify`` if it is a known mode, else a ConfigError listing the modes."""
    if verify not in VERIFY_MODES:
        raise ConfigError(
            f"verify={verify!r} is unknown; use 'shapes' (the cut model runs with the same "
            "output shapes) or 'exact' (also: outputs equal the model with the units zeroed)"
        )
    return verify


def verified_cut(
    model: nn.Module, graph: DependencyGraph, plan: PruningPlan, inputs: Any, verify: str
) -> None:
    """Cut ``model`` in place by ``plan`` and check the result.

    Raises:
        EquivalenceError: the cut is not sound (it fails, does not run, changes the output
            shapes, or, with ``verify="exact"``, changes the outputs of exact groups by the
            rule of :mod:`prunekit.equivalence`); the pruner then redoes the step with every
            group probed.
    """
    removals, removed_units = plan.removals(graph)
    by_id = {g.id: g for g in graph.groups}
    exact = [by_id[gid] for gid in removed_units if by_id[gid].exact]
    compare = verify == "exact" and len(exact) == len(removed_units) and bool(exact)
    if verify == "exact" and exact and not compare:
        # non-exact groups are cut too, so outputs may change: prove the exact ones alone
        why = _trial(model, inputs, graph, exact, compare=True)
        if why is not None:
            raise EquivalenceError(why)
    try:
        if compare:
            # zeroing is out of place: ``model`` may share storage with the caller's model
            run = _runs_checked(graph)
            zero_cut_compare(model, inputs, graph, removals, removed_units, run=run)
        else:
            cut(model, removals, graph, removed_units)
            check_runs(model, inputs, graph.example_output, meta=True)
    except EquivalenceError:
        raise
    except Exception as exc:  # a group no probe has checked yet breaks the cut itself
        raise EquivalenceError(f"the cut failed ({type(exc).__name__}: {exc})") from exc


def _runs_checked(graph: DependencyGraph) -> Any:
    """``run(model, inputs)`` for :func:`zero_cut_compare`: :func:`check_runs` against the
    graph's example output (real tensors)."""
    return lambda model, inputs: check_runs(model, inputs, graph.example_output)


def _to_meta(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return torch.empty_like(obj, device="meta")
    if isinstance(obj, dict):
        return {k: _to_meta(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to_meta(v) for v in obj)
    return obj


def _meta_outputs(model: nn.Module, inputs: Any) -> list[torch.Tensor] | None:
    """The outputs of ``model`` run on the meta device (shapes only), or ``None`` when the
    model cannot run there (data-dependent control flow, tensors held outside parameters
    and buffers ...)."""
    state = {
        n: torch.empty_like(t, device="meta")
        for n, t in list(model.named_parameters(remove_duplicate=False))
        + list(model.named_buffers(remove_duplicate=False))
    }
    meta_inputs = _to_meta(inputs)
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if isinstance(meta_inputs, dict):
        kwargs = meta_inputs
    elif isinstance(meta_inputs, (tuple, list)):
        args = tuple(meta_inputs)
    else:
        args = (meta_inputs,)
    try:
        with torch.no_grad(), eval_mode(model):
            out = functional_call(model, state, args, kwargs, tie_weights=False, strict=False)
    except Exception:  # fall back to a real forward: it is only a faster path
        return None
    outs = flatten_tensors(out)
    if any(t.device.type != "meta" for t in outs):
        return None
    return outs


def check_runs(
    model: nn.Module, example_inputs: Any, reference: Any, *, meta: bool = False
) -> list[torch.Tensor]:
    """The pruned model must run and give outputs of the original shapes; returns them
    (meta tensors when ``meta`` and the model runs on the meta device).

    Raises:
        EquivalenceError: the model fails to run, or its output shapes changed.
    """
    outs = _meta_outputs(model, example_inputs) if meta else None
    if outs is None:
        try:
            with torch.no_grad(), eval_mode(model):
                out = call_model(model, example_inputs)
        except Exception as exc:
            raise EquivalenceError(
                f"the pruned model failed to run ({type(exc).__name__}: {exc}); the original "
                "model is unchanged. A module probably keeps a size in an attribute the engine "
                "does not know: register a handler for it (prunekit.surgery.register_handler)"
            ) from exc
        outs = [t.detach() for t in flatten_tensors(out)]
    got = [tuple(t.shape) for t in outs]
    want = [tuple(t.shape) for t in flatten_tensors(reference)]
    if got != want:
        raise EquivalenceError(
            f"pruning changed the model's output shapes from {want} to {got}; the original "
            "model is unchanged. Please report this with the model definition"
        )
    return outs
