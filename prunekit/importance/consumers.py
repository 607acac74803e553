"""A group's consumer layers as least-squares problems: for the set-aware criteria.

A *consumer* of a group is a layer whose input features are the group's units: a member
whose tensor is the layer's input weight (:func:`~prunekit.importance.calibration.input_weight`)
cut along its input dim. Removing units removes input columns of the consumer's weight
flattened to ``[out, d]`` (dim 0 holds the outputs): a Linear's columns ``u``, a
convolution's ``u * k .. u * k + k - 1`` (its ``k`` kernel elements). What the layer
computes from its input comes from its surgery handler's refit geometry (im2col rows for a
convolution); a layer without one but with a 2-D weight read on its input's last dim
(``nn.MultiheadAttention``'s ``in_proj_weight``, an RNN's ``weight_ih``) is taken as linear
in that input. Nothing here knows a layer type.

:func:`collect_grams` runs the calibration batches with hooks on the consumers of one group
at a time and accumulates each consumer's Gram ``X^T X`` (float64, ``O(d^2)``), so only one
layer's statistics are held, never its activations.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .. import distributed
from .._modelio import call_model, eval_mode, to_device
from ..graph.dependency import Group
from ..lstsq import NormalEquations
from ..surgery import RefitGeometry, get_handler
from .calibration import input_dim, input_weight

__all__ = ["Consumer", "collect_grams", "consumers_of"]

_ROW_CHUNK = 1 << 14  # design rows added to a Gram at a time (bounds the float64 copy)


@dataclass
class Consumer:
    """One consumer layer of a group.

    Attributes:
        module: the layer's qualified name.
        weight: its input weight flattened to ``[out, d]`` (float64), with the bias appended
            as a last column when ``bias``.
        cols: ``[units, columns per unit]``: the columns of ``weight`` each unit owns.
        rows: ``input -> [n, d]`` design rows (``None``: the input is never seen).
        bias: whether the layer's bias is refit with it (a ones column in the Gram).
    """

    module: str
    weight: torch.Tensor
    cols: torch.Tensor
    rows: Callable[[torch.Tensor], torch.Tensor] | None
    bias: bool


def _linear_rows(size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def rows(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != size:
            raise ValueError(f"input feature dim {x.shape[-1]} != {size}")
        return x.reshape(-1, size)

    return rows


def _consumer(
    group: Group, name: str, tensor: str, dim: int, mod: nn.Module, member_idx: Any
) -> Consumer | None:
    w = mod._parameters.get(tensor)
    if w is None or w.dim() < 2 or input_dim(mod, w, tensor) != dim or dim != 1:
        return None
    geo = get_handler(mod).refit_geometry(mod)
    bias_t = getattr(mod, "bias", None)
    if isinstance(geo, RefitGeometry):
        rows: Callable[[torch.Tensor], torch.Tensor] | None = geo.rows
        bias = isinstance(bias_t, torch.Tensor)
    elif geo is None and w.dim() == 2:
        rows, bias = _linear_rows(w.shape[1]), False
    else:  # e.g. a grouped convolution: no least-squares view of it
        return None
    flat = w.detach().double().reshape(w.shape[0], -1)
    if bias:
        assert isinstance(bias_t, torch.Tensor)
        flat = torch.cat([flat, bias_t.detach().double()[:, None]], 1)
    positions = torch.arange(w[0].numel()).reshape(w.shape[1:])
    idx = torch.as_tensor(member_idx, dtype=torch.long)
    cols = positions.index_select(0, idx.reshape(-1)).reshape(group.num_units, -1)
    return Consumer(name, flat, cols, rows, bias)


def consumers_of(group: Group, modules: dict[str, nn.Module]) -> list[Consumer]:
    """The consumer layers of ``group`` (one per consumer member; ``modules``: the prepared
    model's ``named_modules()``).

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
        >>> g = prunekit.analyze(net, torch.zeros(1, 1, 8, 8)).groups[0]
        >>> [(c.module, tuple(c.weight.shape), c.cols[1].tolist()[:3]) for c in consumers_of(g, dict(net.named_modules()))]
        [('2', (2, 37), [9, 10, 11])]
    """
    out = []
    for m in group.members:
        mod = modules.get(m.module)
        if not m.is_param or mod is None or m.tensor != input_weight(mod):
            continue
        c = _consumer(group, m.module, m.tensor, m.dim, mod, m.indices)
        if c is not None:
            out.append(c)
    return out


def collect_grams(
    model: nn.Module,
    consumers: list[Consumer],
    batches: list[Any],
    inputs: Callable[[Any], Any],
) -> dict[str, NormalEquations]:
    """Each consumer's Gram of design rows over ``batches`` (model in eval mode, no grad);
    a consumer whose input was never seen (its module is not called: weights used by a
    functional op inside a parent) is missing from the result."""
    grams: dict[str, NormalEquations] = {}
    mods = dict(model.named_modules())
    device = next((p.device for p in model.parameters()), torch.device("cpu"))

    def hook_for(c: Consumer) -> Callable[[nn.Module, Any], None]:
        def hook(module: nn.Module, args: Any) -> None:
            x = args[0] if isinstance(args, tuple) and args else None
            if c.rows is None or not isinstance(x, torch.Tensor) or not x.is_floating_point():
                return
            try:
                rows = c.rows(x.detach())
            except (ValueError, RuntimeError):  # an input this view cannot read
                return
            eq = grams.setdefault(c.module, NormalEquations(bias=c.bias))
            for start in range(0, rows.shape[0], _ROW_CHUNK):
                eq.add(rows[start : start + _ROW_CHUNK])

        return hook

    with ExitStack() as stack, torch.no_grad(), eval_mode(model):
        for c in consumers:
            handle = mods[c.module].register_forward_pre_hook(hook_for(c))
            stack.callback(handle.remove)
        for batch in batches:
            call_model(model, inputs(to_device(batch, device)))
    return _reduced(grams, consumers) if distributed.active() else grams


def _reduced(
    grams: dict[str, NormalEquations], consumers: list[Consumer]
) -> dict[str, NormalEquations]:
    """Under torchrun: every rank's Grams summed (ranks that saw a layer's input on no batch
    contribute zeros), so every rank scores with the Grams of all the batches."""
    sums = {f"a/{k}": eq.a for k, eq in grams.items() if eq.a is not None}
    rows = {
        f"rows/{k}": torch.tensor(float(eq.rows), dtype=torch.float64) for k, eq in grams.items()
    }
    sums.update(rows)
    reduced = distributed.all_reduce_named(sums)
    bias = {c.module: c.bias for c in consumers}
    out: dict[str, NormalEquations] = {}
    for key, value in reduced.items():
        kind, module = key.split("/", 1)
        eq = out.setdefault(module, NormalEquations(bias=bias[module]))
        if kind == "a":
            eq.a = value
        else:
            eq.rows = int(value)
    return out
