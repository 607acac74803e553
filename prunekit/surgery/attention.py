"""``nn.MultiheadAttention``: heads (q/k/v rows of a head + its out_proj columns) as units.

``nn.MultiheadAttention`` itself requires ``num_heads * head_dim == embed_dim``, so once
heads or the embedding dim are cut the module's class becomes
:class:`PrunedMultiheadAttention`, a subclass with the same parameters and state-dict keys
whose forward allows any head count.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..graph.context import Info, TraceContext
from .registry import Handler, register_handler

__all__ = ["PrunedMultiheadAttention"]


def _mha_rule(
    ctx: TraceContext, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
) -> None:
    assert isinstance(module, nn.MultiheadAttention)
    names = ("query", "key", "value")
    q, k, v = (args[i] if len(args) > i else kwargs.get(n) for i, n in enumerate(names))
    h, d = module.num_heads, module.head_dim
    if module.bias_k is not None:
        for p in module.parameters(recurse=False):
            ctx.freeze_info(ctx.get(p), ctx.where("MultiheadAttention with add_bias_kv"))
    if module.in_proj_weight is not None:
        w = ctx.get(module.in_proj_weight)
        for t in (q, k, v):
            ctx.couple(w.labels[1], ctx.get(t).labels[-1], ctx.where("attention input"))
        rows = [w.labels[0]]
    else:
        rows = []
        for t, p in zip((q, k, v), ("q", "k", "v"), strict=True):
            w = ctx.get(getattr(module, f"{p}_proj_weight"))
            ctx.couple(w.labels[1], ctx.get(t).labels[-1], ctx.where("attention input"))
            rows.append(w.labels[0])
    if module.in_proj_bias is not None:
        rows.append(ctx.get(module.in_proj_bias).labels[0])
    heads = ctx.get(module.out_proj.weight).labels[1]
    assert heads is not None
    heads = heads.reshape(h, d)
    for r in rows:
        assert r is not None
        for block in r.reshape(-1, h, d):
            ctx.table.union(block, heads)
    for row in heads:
        ctx.table.union_all(row)
    out_rows = ctx.get(module.out_proj.weight).labels[0]
    if module.out_proj.bias is not None:
        ctx.couple(out_rows, ctx.get(module.out_proj.bias).labels[0], ctx.where("out_proj"))
    attn, weights = out
    info = Info.empty(attn.dim())
    info.labels[-1] = out_rows
    if out_rows is not None:
        info.zeros[-1] = np.ones(len(out_rows), dtype=np.bool_)
    ctx.set(attn, info)
    if isinstance(weights, Tensor):
        ctx.table.mark_nonexact(heads.ravel(), ctx.where("attention weights averaged over heads"))


class PrunedMultiheadAttention(nn.MultiheadAttention):
    """``nn.MultiheadAttention`` whose heads and embedding dim can be cut independently."""

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        if not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        b, tq, _ = query.shape
        inner = self.num_heads * self.head_dim
        if self.in_proj_weight is not None:
            ws = self.in_proj_weight.split(inner)
        else:
            ws = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        bs = self.in_proj_bias.split(inner) if self.in_proj_bias is not None else (None,) * 3
        q, k, v = (
            F.linear(t, w, bias).view(b, t.shape[1], self.num_heads, self.head_dim).transpose(1, 2)
            for t, w, bias in zip((query, key, value), ws, bs, strict=True)
        )
        mask = self._merge_mask(attn_mask, key_padding_mask, b, tq, k.shape[2], q.dtype)
        if is_causal and mask is None:
            mask = (
                torch.ones(tq, k.shape[2], dtype=torch.bool, device=q.device).tril().logical_not()
            )
            mask = torch.zeros_like(mask, dtype=q.dtype).masked_fill(mask, float("-inf"))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        attn = F.dropout(scores.softmax(-1), self.dropout, self.training)
        out = (attn @ v).transpose(1, 2).reshape(b, tq, inner)
        out = self.out_proj(out)
        if not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        return out, attn.mean(1) if average_attn_weights else attn

    def _merge_mask(
        self, attn_mask: Tensor | None, kpm: Tensor | None, b: int, tq: int, tk: int, dtype: Any
    ) -> Tensor | None:
        def additive(m: Tensor) -> Tensor:
            if m.dtype == torch.bool:
                return torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(
                    m, float("-inf")
                )
            return m.to(dtype)

        mask = None
        if attn_mask is not None:
            m = additive(attn_mask)
            mask = m.view(b, self.num_heads, tq, tk) if m.dim() == 3 else m
        if kpm is not None:
            m = additive(kpm).view(b, 1, 1, tk)
            mask = m if mask is None else mask + m
        return mask


class MultiheadAttentionHandler(Handler):
    leaf_rule = staticmethod(_mha_rule)

    def output_dims(self, module: nn.Module) -> dict[str, int]:
        return {"in_proj_weight": 0, "in_proj_bias": 0, "q_proj_weight": 0}

    def update(self, module: nn.Module) -> None:
        assert isinstance(module, nn.MultiheadAttention)
        module.embed_dim = module.out_proj.weight.shape[0]
        module.num_heads = module.out_proj.weight.shape[1] // module.head_dim
        module.out_proj.in_features = module.out_proj.weight.shape[1]
        module.out_proj.out_features = module.out_proj.weight.shape[0]
        if module.in_proj_weight is not None:
            module.kdim = module.vdim = module.in_proj_weight.shape[1]
        else:
            module.kdim, module.vdim = module.k_proj_weight.shape[1], module.v_proj_weight.shape[1]
        module._qkv_same_embed_dim = False  # keeps fused fast paths away from the new shapes
        module.__class__ = PrunedMultiheadAttention


register_handler(nn.MultiheadAttention, MultiheadAttentionHandler())
