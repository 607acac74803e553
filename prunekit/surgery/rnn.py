"""``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``: hidden units, traced as one node.

All layers and directions share one ``hidden_size``, so hidden unit h is one unit across
every layer and direction: rows ``g*H + h`` of every gate block in ``weight_ih``/``weight_hh``
and both biases, column h of every ``weight_hh``, and the matching input columns of the next
layer. With zero initial state a zeroed unit stays exactly zero (LSTM: c = f*c + i*tanh(0)).
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
    sfx = ["", "_reverse"][:dirs]
    g = _GATES[module.mode]
    first = ctx.get(module.weight_hh_l0)
    units = first.labels[1]
    if units is None or not isinstance(x, torch.Tensor) or module.proj_size > 0:
        _freeze_all(ctx, module, "RNN with projections or packed input")
        return
    for layer in range(module.num_layers):
        for s in sfx:
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                p = getattr(module, f"{kind}_l{layer}{s}", None)
                if p is None:
                    continue
                rows = ctx.get(p).labels[0]
                assert rows is not None
                for gate in rows.reshape(g, -1):
                    ctx.table.union(gate, units)
            hh = ctx.get(getattr(module, f"weight_hh_l{layer}{s}")).labels[1]
            ctx.table.union(hh, units)  # type: ignore[arg-type]
            ih = ctx.get(getattr(module, f"weight_ih_l{layer}{s}")).labels[1]
            assert ih is not None
            if layer == 0:
                ctx.couple(ih, ctx.get(x).labels[-1], ctx.where("RNN input"))
            else:
                for block in ih.reshape(dirs, -1):
                    ctx.table.union(block, units)
    for t in hx if isinstance(hx, tuple) else (hx,):
        if isinstance(t, torch.Tensor):
            ctx.couple(units, ctx.get(t).labels[-1], ctx.where("RNN initial state"))
    _label_outputs(ctx, out, units, dirs)


def _label_outputs(ctx: TraceContext, out: Any, units: np.ndarray, dirs: int) -> None:
    seq, hidden = out
    info = Info.empty(seq.dim())
    info.labels[-1] = np.tile(units, dirs)
    info.zeros[-1] = np.ones(len(units) * dirs, dtype=bool)
    ctx.set(seq, info)
    for h in hidden if isinstance(hidden, tuple) else (hidden,):
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
        return {
            n: 0 for n, _ in module.named_parameters(recurse=False) if "_hh_" in n or "_ih_" in n
        }

    def update(self, module: nn.Module) -> None:
        assert isinstance(module, nn.RNNBase)
        hh, ih = module.weight_hh_l0, module.weight_ih_l0
        assert isinstance(hh, torch.Tensor) and isinstance(ih, torch.Tensor)
        module.hidden_size = int(hh.shape[1])
        module.input_size = int(ih.shape[1])
        module._init_flat_weights()


register_handler(nn.RNNBase, RNNHandler())
