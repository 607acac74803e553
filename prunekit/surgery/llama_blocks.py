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

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

__all__ = [
    "BlockLayout",
    "cut_ffn",
    "cut_heads",
    "decoder_layers",
    "fit_block",
    "layout_of",
    "projections",
    "remove_blocks",
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
    """Write the blocks' widths into ``model.config`` (``num_attention_heads``,
    ``intermediate_size``, ``head_dim`` kept explicit; ``attention_bias``/``mlp_bias`` when
    a compensated bias was added, with zero biases on the sibling projections so the config
    describes every block). When the blocks differ (adaptive allocation) no single config
    describes them: the per-block widths go to ``config.prunekit_layer_widths`` (a list of
    ``{"num_attention_heads", "num_key_value_heads", "intermediate_size"}``, one per block),
    the shared fields keep the widest block, and each module's own attributes
    (``num_key_value_groups``, ``intermediate_size``) describe it."""
    config: Any = getattr(model, "config", None)
    layouts = [BlockLayout(b) for b in decoder_layers(model)]
    widths = [(lay.num_heads, lay.num_kv_heads, lay.intermediate) for lay in layouts]
    if config is None:
        return
    config.head_dim = layouts[0].head_dim
    if len(set(widths)) == 1:
        config.num_attention_heads, config.num_key_value_heads, config.intermediate_size = widths[0]
        if hasattr(config, "prunekit_layer_widths"):
            delattr(config, "prunekit_layer_widths")
    else:
        keys = ("num_attention_heads", "num_key_value_heads", "intermediate_size")
        config.prunekit_layer_widths = [dict(zip(keys, w)) for w in widths]
        widest = max(widths, key=lambda w: (w[0] * w[1], w[2]))
        config.num_attention_heads, config.num_key_value_heads = widest[0], widest[1]
        config.intermediate_size = max(w[2] for w in widths)
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


PER_LAYER_CONFIG_LISTS = ("layer_types", "no_rope_layers")
"""Config attributes holding one entry per decoder block (they follow :func:`remove_blocks`)."""


def remove_blocks(model: nn.Module, removed: Sequence[int]) -> list[int]:
    """Delete decoder blocks ``removed`` (indices into :func:`decoder_layers`) in place.

    The remaining blocks are renumbered: every submodule's ``layer_idx`` (the KV-cache slot
    of a Hugging Face attention) takes its new position; ``config.num_hidden_layers`` and
    the per-block config lists (:data:`PER_LAYER_CONFIG_LISTS`, e.g. ``layer_types``) follow,
    so ``save_pretrained`` -> ``from_pretrained`` and ``generate()`` see a coherent model.

    Returns:
        The original indices of the kept blocks, in order.

    Raises:
        ConfigError: An index is out of range, repeated, or every block would go.
    """
    layers = decoder_layers(model)
    n = len(layers)
    gone = sorted({int(i) for i in removed})
    bad = [i for i in gone if not 0 <= i < n]
    if bad or len(gone) != len(removed) or len(gone) >= n:
        raise ConfigError(
            f"remove_blocks: indices {list(removed)} must be distinct, in [0, {n}) and leave "
            f"at least one of the {n} blocks; out of range: {bad}"
        )
    keep = [i for i in range(n) if i not in set(gone)]
    for i in reversed(gone):
        del layers[i]  # ModuleList renumbers its keys
    for new, block in enumerate(layers):
        for mod in block.modules():
            idx = getattr(mod, "layer_idx", None)
            if isinstance(idx, int) and not isinstance(idx, bool):
                setattr(mod, "layer_idx", new)  # noqa: B010 (typed as Module)
    seen: set[int] = set()
    for mod in model.modules():
        config: Any = getattr(mod, "config", None)
        if config is None or id(config) in seen:
            continue
        seen.add(id(config))
        if getattr(config, "num_hidden_layers", None) == n:
            config.num_hidden_layers = len(keep)
        for name in PER_LAYER_CONFIG_LISTS:
            values = getattr(config, name, None)
            if isinstance(values, (list, tuple)) and len(values) == n:
                setattr(config, name, [values[i] for i in keep])
    return keep


def _drop_kv_groups(block: nn.Module, groups: int) -> None:
    """Remove the last ``groups`` KV heads of ``block`` and the query heads they serve."""
    lay = BlockLayout(block)
    attn = _part(block, "self_attn")
    d, kv = lay.head_dim, lay.num_kv_heads - groups
    _rows(_linear(attn, "k_proj"), torch.arange(kv * d))
    _rows(_linear(attn, "v_proj"), torch.arange(kv * d))
    _rows(_linear(attn, "q_proj"), torch.arange(kv * lay.per_group * d))
    _cols(_linear(attn, "o_proj"), torch.arange(kv * lay.per_group * d))
    for name, value in (("num_key_value_heads", kv), ("num_heads", kv * lay.per_group)):
        if hasattr(attn, name):
            setattr(attn, name, value)


def shrink_block(block: nn.Module, *, num_heads: int, num_kv_heads: int, intermediate: int) -> None:
    """Cut ``block`` down to the given widths, dropping the *last* units (trailing KV groups,
    the last query heads of every group, the last FFN neurons) with the same surgery as a
    pruning cut, so every attribute stays coherent. For a loader that overwrites the weights
    next (the values kept do not matter, the shapes and attributes do).

    Raises:
        ConfigError: A width is larger than the block's, or the query heads do not split
            evenly into the KV groups.
    """
    lay = BlockLayout(block)
    wider = (
        num_kv_heads > lay.num_kv_heads
        or num_heads > num_kv_heads * lay.per_group
        or intermediate > lay.intermediate
    )
    if wider or num_kv_heads < 1 or num_heads % num_kv_heads or intermediate < 0:
        raise ConfigError(
            f"shrink_block: cannot cut a block of {lay.num_heads} query heads / "
            f"{lay.num_kv_heads} KV heads / FFN {lay.intermediate} to {num_heads} / "
            f"{num_kv_heads} / {intermediate}; widths must shrink and the query heads must "
            "split evenly into the KV groups"
        )
    if num_kv_heads < lay.num_kv_heads:
        _drop_kv_groups(block, lay.num_kv_heads - num_kv_heads)
    per_group = num_heads // num_kv_heads
    lost = lay.per_group - per_group
    if lost:
        heads = torch.arange(num_kv_heads)[:, None] * lay.per_group + torch.arange(
            per_group, lay.per_group
        )
        cut_heads(block, heads.flatten())
    if intermediate < lay.intermediate:
        cut_ffn(block, torch.arange(intermediate, lay.intermediate))


def fit_block(block: nn.Module, shapes: dict[str, tuple[int, ...]]) -> bool:
    """Cut ``block`` to the widths that the saved tensor ``shapes`` of this block imply
    (keys relative to the block: ``"self_attn.q_proj.weight"`` ...), with
    :func:`shrink_block`. Returns whether anything was cut; a block whose saved shapes name
    no q/k/gate projection is left alone."""
    lay = BlockLayout(block)
    q, k = shapes.get("self_attn.q_proj.weight"), shapes.get("self_attn.k_proj.weight")
    gate = shapes.get("mlp.gate_proj.weight")
    if q is None or k is None or gate is None:
        return False
    heads, kv, inter = q[0] // lay.head_dim, k[0] // lay.head_dim, gate[0]
    if (heads, kv, inter) == (lay.num_heads, lay.num_kv_heads, lay.intermediate):
        return False
    shrink_block(block, num_heads=heads, num_kv_heads=kv, intermediate=inter)
    return True
