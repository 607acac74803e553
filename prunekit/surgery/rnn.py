"""``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``: hidden units, traced as one node.

All layers and directions share one ``hidden_size``, so hidden unit h is one unit across
every layer and direction: rows ``g*H + h`` of every gate block in ``weight_ih``/``weight_hh``
and both biases, column h of every ``weight_hh``, and the matching input columns of the next
layer. With zero initial state a zeroed unit stays exactly zero (LSTM: c = f*c + i*tanh(0)).

A projected LSTM (``proj_size > 0``) has two groups: the cell units (gate rows and the
columns of ``weight_hr``) and the projection units (rows of ``weight_hr``: the output h,
the columns of ``weight_hh`` and the next layer's input columns).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..graph.context import Info, TraceContext
from .registry import Handler, register_handler

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _rnn_rule(
    ctx: TraceContext, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
) -> None:
    assert isinstance(module, nn.RNNBase)
    x = args[0] if args else kwargs.get("input")
    hx = args[1] if len(args) > 1 else kwargs.get("hx")
    dirs = 2 if module.bidirectional else 1
    proj = module.proj_size > 0
    outs = ctx.get(module.weight_hh_l0).labels[1]  # the recurrent state h (projected if so)
    hidden = ctx.get(module.weight_hr_l0).labels[1] if proj else outs  # the cell units
    if outs is None or hidden is None or not isinstance(x, torch.Tensor):
        _freeze_all(ctx, module, "RNN with packed input")
        return
    for layer in range(module.num_layers):
        for s in ["", "_reverse"][:dirs]:
            _couple_layer(ctx, module, f"l{layer}{s}", hidden, outs)
            ih = ctx.get(getattr(module, f"weight_ih_l{layer}{s}")).labels[1]
            assert ih is not None
            if layer == 0:
                ctx.couple(ih, ctx.get(x).labels[-1], ctx.where("RNN input"))
            else:
                for block in ih.reshape(dirs, -1):
                    ctx.table.union(block, outs)
    states = hx if isinstance(hx, tuple) else (hx,)
    for t, units in zip(states, (outs, hidden), strict=False):  # LSTM: (h0, c0)
        if isinstance(t, torch.Tensor):
            ctx.couple(units, ctx.get(t).labels[-1], ctx.where("RNN initial state"))
    _label_outputs(ctx, out, outs, hidden, dirs)


def _couple_layer(
    ctx: TraceContext, module: nn.RNNBase, sfx: str, hidden: np.ndarray, outs: np.ndarray
) -> None:
    """Gate rows of every weight and bias are the cell units; ``weight_hh`` columns are the
    recurrent state; ``weight_hr`` (``proj_size > 0``) maps cell units to the state."""
    g = _GATES[module.mode]
    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        p = getattr(module, f"{kind}_{sfx}", None)
        if p is None:
            continue
        rows = ctx.get(p).labels[0]
        assert rows is not None
        for gate in rows.reshape(g, -1):
            ctx.table.union(gate, hidden)
    hh = ctx.get(getattr(module, f"weight_hh_{sfx}")).labels[1]
    ctx.table.union(hh, outs)  # type: ignore[arg-type]
    hr = getattr(module, f"weight_hr_{sfx}", None)
    if hr is not None:
        hri = ctx.get(hr)
        ctx.table.union(hri.labels[0], outs)  # type: ignore[arg-type]
        ctx.table.union(hri.labels[1], hidden)  # type: ignore[arg-type]


def _label_outputs(
    ctx: TraceContext, out: Any, outs: np.ndarray, hidden: np.ndarray, dirs: int
) -> None:
    seq, final = out
    info = Info.empty(seq.dim())
    info.labels[-1] = np.tile(outs, dirs)
    info.zeros[-1] = np.ones(len(outs) * dirs, dtype=bool)
    ctx.set(seq, info)
    states = final if isinstance(final, tuple) else (final,)
    for h, units in zip(states, (outs, hidden), strict=False):  # LSTM: (h_n, c_n)
        hinfo = Info.empty(h.dim())
        hinfo.labels[-1], hinfo.zeros[-1] = units, np.ones(len(units), dtype=bool)
        ctx.set(h, hinfo)


def _freeze_all(ctx: TraceContext, module: nn.Module, why: str) -> None:
    for p in module.parameters(recurse=False):
        ctx.freeze_info(ctx.get(p), ctx.where(why), kind="unsupported")


class RNNHandler(Handler):
    """Keeps ``hidden_size``/``input_size`` and cuDNN flat weights coherent."""

    leaf_rule = staticmethod(_rnn_rule)

    def output_dims(self, module: nn.Module) -> dict[str, int]:
        names = ("_hh_", "_ih_", "_hr_")
        return {
            n: 0 for n, _ in module.named_parameters(recurse=False) if any(k in n for k in names)
        }

    def update(self, module: nn.Module) -> None:
        assert isinstance(module, nn.RNNBase)
        hh, ih = module.weight_hh_l0, module.weight_ih_l0
        assert isinstance(hh, torch.Tensor) and isinstance(ih, torch.Tensor)
        if module.proj_size > 0:
            hr = module.weight_hr_l0
            assert isinstance(hr, torch.Tensor)
            module.proj_size, module.hidden_size = int(hr.shape[0]), int(hr.shape[1])
        else:
            module.hidden_size = int(hh.shape[1])
        module.input_size = int(ih.shape[1])
        module._init_flat_weights()


register_handler(nn.RNNBase, RNNHandler())
