"""A direct slicer for the Llama-family decoder block, used by :mod:`prunekit.llm`.

prunekit's engine traces a model and derives its dependency groups; for a decoder LLM the
groups of one block are known in advance and the trace of a whole 30-block model is the
slow part (issue #18). This module therefore cuts the two structured unit kinds of a
Hugging Face Llama-layout block directly; it lives with the layer handlers, the only place
that knows layer layouts (the layout shared by ``LlamaForCausalLM``, Mistral, Qwen2, SmolLM):

* ``block.self_attn.{q_proj, k_proj, v_proj, o_proj}``; query head ``h`` owns rows
  ``h*d:(h+1)*d`` of ``q_proj`` and the same columns of ``o_proj``; KV head ``g`` serves
  query heads ``g*r .. g*r+r-1`` (``r = num_key_value_groups``, as ``repeat_kv`` expands).
* ``block.mlp.{gate_proj, up_proj, down_proj}``; FFN neuron ``j`` owns row ``j`` of
  ``gate_proj``/``up_proj`` and column ``j`` of ``down_proj``.

Query heads are removed *within each KV group*, the same count in every group, so
``k_proj``/``v_proj`` and ``num_key_value_heads`` stay and a config can describe the block.
After a cut the block's own attributes follow (``self_attn.num_key_value_groups``,
``mlp.intermediate_size``); :func:`sync_llm_config` updates the shared config once every
block has the same widths.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

__all__ = [
    "BlockLayout",
    "cut_ffn",
    "cut_heads",
    "decoder_layers",
    "layout_of",
    "projections",
    "sync_llm_config",
]


class BlockLayout:
    """Sizes of one Llama-layout decoder block, read from its tensors.

    Attributes:
        head_dim, num_heads, num_kv_heads, intermediate: As named.
        per_group: Query heads per KV head.
    """

    def __init__(self, block: nn.Module) -> None:
        attn, mlp = _part(block, "self_attn"), _part(block, "mlp")
        self.head_dim = int(getattr(attn, "head_dim", 0))
        q, k = _linear(attn, "q_proj"), _linear(attn, "k_proj")
        if self.head_dim <= 0 or q.out_features % self.head_dim or k.out_features % self.head_dim:
            raise ConfigError(
                f"llm slicer: self_attn.head_dim={self.head_dim} does not divide q_proj "
                f"({q.out_features}) and k_proj ({k.out_features}) outputs"
            )
        self.num_heads = q.out_features // self.head_dim
        self.num_kv_heads = k.out_features // self.head_dim
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"llm slicer: {self.num_heads} query heads do not split into "
                f"{self.num_kv_heads} KV groups"
            )
        self.per_group = self.num_heads // self.num_kv_heads
        self.intermediate = _linear(mlp, "gate_proj").out_features


def layout_of(block: nn.Module) -> BlockLayout:
    """The :class:`BlockLayout` of ``block`` (raises ConfigError for another layout)."""
    return BlockLayout(block)


def _part(module: nn.Module, name: str) -> nn.Module:
    part = getattr(module, name, None)
    if not isinstance(part, nn.Module):
        raise ConfigError(
            f"llm slicer: {type(module).__name__} has no submodule {name!r}; the block-wise "
            "path supports the Llama layout (self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj)"
        )
    return part


def _linear(module: nn.Module, name: str) -> nn.Linear:
    part = _part(module, name)
    if not isinstance(part, nn.Linear):
        raise ConfigError(
            f"llm slicer: {type(module).__name__}.{name} is a {type(part).__name__}, "
            "expected nn.Linear"
        )
    return part


def projections(block: nn.Module) -> dict[str, nn.Linear]:
    """The seven projections of a Llama-layout block by name (``q_proj`` ... ``down_proj``)."""
    attn, mlp = _part(block, "self_attn"), _part(block, "mlp")
    out = {n: _linear(attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")}
    out.update({n: _linear(mlp, n) for n in ("gate_proj", "up_proj", "down_proj")})
    return out


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of decoder blocks: the first ``nn.ModuleList`` whose items all have
    ``self_attn`` and ``mlp`` (``model.model.layers`` for a Hugging Face causal LM)."""
    for mod in model.modules():
        if (
            isinstance(mod, nn.ModuleList)
            and len(mod)
            and all(hasattr(b, "self_attn") and hasattr(b, "mlp") for b in mod)
        ):
            return mod
    raise ConfigError(
        f"llm: {type(model).__name__} has no ModuleList of decoder blocks with self_attn and "
        "mlp; the block-wise path supports Llama-layout causal LMs"
    )


def _keep(total: int, removed: torch.Tensor) -> torch.Tensor:
    mask = torch.ones(total, dtype=torch.bool)
    mask[removed] = False
    return mask.nonzero().flatten()


def _rows(layer: nn.Linear, keep: torch.Tensor) -> None:
    idx = keep.to(layer.weight.device)
    layer.weight = nn.Parameter(layer.weight.detach()[idx].clone())
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias.detach()[idx].clone())
    layer.out_features = int(keep.numel())


def _cols(layer: nn.Linear, keep: torch.Tensor) -> None:
    idx = keep.to(layer.weight.device)
    layer.weight = nn.Parameter(layer.weight.detach()[:, idx].clone())
    layer.in_features = int(keep.numel())


def cut_ffn(block: nn.Module, removed: torch.Tensor) -> None:
    """Remove FFN neurons ``removed`` (gate/up rows, down columns) from ``block``."""
    mlp = _part(block, "mlp")
    total = _linear(mlp, "gate_proj").out_features
    keep = _keep(total, removed)
    _rows(_linear(mlp, "gate_proj"), keep)
    _rows(_linear(mlp, "up_proj"), keep)
    _cols(_linear(mlp, "down_proj"), keep)
    if hasattr(mlp, "intermediate_size"):
        setattr(mlp, "intermediate_size", int(keep.numel()))  # noqa: B010 (typed as Module)


def cut_heads(block: nn.Module, removed: torch.Tensor) -> None:
    """Remove query heads ``removed`` from ``block``; every KV group must lose the same
    number (raises ConfigError otherwise), so ``k_proj``/``v_proj`` stay."""
    layout = BlockLayout(block)
    attn = _part(block, "self_attn")
    lost = torch.bincount(removed // layout.per_group, minlength=layout.num_kv_heads)
    if removed.numel() and not bool((lost == lost[0]).all()):
        raise ConfigError(
            f"cut_heads: heads {removed.tolist()} remove {lost.tolist()} per KV group; every "
            "group must lose the same count so num_key_value_heads stays"
        )
    if removed.numel() == 0:
        return
    heads = _keep(layout.num_heads, removed)
    d = layout.head_dim
    channels = (heads[:, None] * d + torch.arange(d)[None, :]).flatten()
    _rows(_linear(attn, "q_proj"), channels)
    _cols(_linear(attn, "o_proj"), channels)
    setattr(attn, "num_key_value_groups", layout.per_group - int(lost[0]))  # noqa: B010
    if hasattr(attn, "num_heads"):
        setattr(attn, "num_heads", int(heads.numel()))  # noqa: B010


def sync_llm_config(model: nn.Module) -> None:
    """Write the blocks' common widths into ``model.config`` (``num_attention_heads``,
    ``intermediate_size``, ``head_dim`` kept explicit; ``attention_bias``/``mlp_bias`` when
    a compensated bias was added, with zero biases on the sibling projections so the config
    describes every block). Raises ConfigError when the blocks differ."""
    config: Any = getattr(model, "config", None)
    layouts = [BlockLayout(b) for b in decoder_layers(model)]
    widths = {(lay.num_heads, lay.intermediate) for lay in layouts}
    if len(widths) != 1:
        raise ConfigError(
            f"sync_llm_config: blocks have different (heads, FFN) widths {sorted(widths)}; a "
            "single config cannot describe them"
        )
    if config is None:
        return
    heads, inter = widths.pop()
    config.head_dim = layouts[0].head_dim
    config.num_attention_heads = heads
    config.intermediate_size = inter
    for flag, part, names in (
        ("attention_bias", "self_attn", ("q_proj", "k_proj", "v_proj", "o_proj")),
        ("mlp_bias", "mlp", ("gate_proj", "up_proj", "down_proj")),
    ):
        layers = [_linear(_part(b, part), n) for b in decoder_layers(model) for n in names]
        if any(lin.bias is not None for lin in layers):
            for lin in layers:
                if lin.bias is None:
                    w = lin.weight
                    lin.bias = nn.Parameter(torch.zeros(w.shape[0], dtype=w.dtype, device=w.device))
            setattr(config, flag, True)
