"""Block-by-block calibrated structured pruning of a decoder LLM (FLAP / SparseGPT order).

``prune_blockwise(model, calibration, criterion="flap", head_ratio=..., target=0.2)``:

1. the calibration windows (``(N, L)`` token ids) run through the embedding; the inputs of
   decoder block 0 (and the keywords it is called with: rotary embeddings, mask) are
   captured and the rest of the model is not run;
2. for each block in order: its inputs run through it with hooks on ``o_proj`` and
   ``down_proj`` that accumulate per-channel statistics (:class:`~.criteria.ChannelStats`;
   only this block's hidden states are held), the units are scored
   (:mod:`prunekit.llm.criteria`), the lowest are cut (:mod:`prunekit.surgery.llama_blocks`: query
   heads within each KV group, FFN neurons), FLAP's bias compensation is applied when asked,
   and the *pruned* block produces the next block's inputs.

Allocation is uniform (:func:`~.budget.uniform_cut`): every block loses the same units, so
``model.config`` describes the result and ``generate()`` runs. The model is cut in place
when ``inplace=True`` (no copy: the memory is the weights plus one block's activations).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ConfigError
from ..surgery.llama_blocks import (
    BlockLayout,
    cut_ffn,
    cut_heads,
    decoder_layers,
    projections,
    sync_llm_config,
)
from .activations import CALIBRATION_BATCH, Chunk, capture_block_inputs, run_block
from .budget import UniformCut, uniform_cut
from .criteria import CRITERIA, ChannelStats, channel_scores, compensate_bias, unit_scores

__all__ = ["BlockwiseResult", "prune_blockwise", "select_heads"]


@dataclass
class BlockwiseResult:
    """Outcome of :func:`prune_blockwise`.

    Attributes:
        model: The pruned model.
        cut: What every block lost.
        criterion: The criterion's name; ``bias_compensation`` whether FLAP's bias was added.
        block_params: Decoder-block parameters ``(before, after)``.
        seconds: Wall time.
        removed: Per block, ``{"heads": [...], "ffn": [...]}`` (original indices).
    """

    model: nn.Module
    cut: UniformCut
    criterion: str
    bias_compensation: bool
    block_params: tuple[int, int]
    seconds: float
    removed: list[dict[str, list[int]]] = field(default_factory=list)

    def summary(self) -> str:
        """One line: criterion, cut and parameters removed."""
        before, after = self.block_params
        return (
            f"{self.criterion}{' + bias' if self.bias_compensation else ''}: "
            f"{self.cut.heads_per_group} head(s)/KV group, {self.cut.ffn_neurons} FFN neurons "
            f"per block; decoder-block params {before:,} -> {after:,} "
            f"({1 - after / before:.1%} removed) in {self.seconds:.1f} s"
        )


def _statistics(block: nn.Module, chunks: list[Chunk]) -> dict[str, ChannelStats]:
    """Input statistics of ``o_proj`` and ``down_proj`` over every calibration token."""
    proj = projections(block)
    layers = {"attn": proj["o_proj"], "ffn": proj["down_proj"]}
    stats = {k: ChannelStats(lin.in_features) for k, lin in layers.items()}
    handles = [
        lin.register_forward_pre_hook(lambda _, a, s=stats[k]: s.add(a[0]))
        for k, lin in layers.items()
    ]
    try:
        run_block(block, chunks)
    finally:
        for h in handles:
            h.remove()
    return stats


def select_heads(scores: torch.Tensor, per_group: int, per_group_removed: int) -> torch.Tensor:
    """Indices of the ``per_group_removed`` lowest-scoring query heads of every KV group
    (group ``g`` holds heads ``g*per_group .. g*per_group + per_group - 1``), sorted."""
    if per_group_removed == 0:
        return torch.zeros(0, dtype=torch.long)
    grouped = scores.reshape(-1, per_group)
    low = grouped.argsort(dim=1, stable=True)[:, :per_group_removed]
    offsets = torch.arange(grouped.shape[0])[:, None] * per_group
    return (low + offsets).flatten().sort().values


def _prune_block(
    block: nn.Module,
    criterion: str,
    stats: dict[str, ChannelStats] | None,
    cut: UniformCut,
    compensate: bool,
) -> dict[str, list[int]]:
    lay = BlockLayout(block)
    p = projections(block)
    s = stats or {}
    q_rows = (p["q_proj"].weight,)
    ffn_rows = (p["gate_proj"].weight, p["up_proj"].weight)
    head_ch = channel_scores(criterion, p["o_proj"].weight, s.get("attn"), producers=q_rows)
    ffn_ch = channel_scores(criterion, p["down_proj"].weight, s.get("ffn"), producers=ffn_rows)
    heads = select_heads(
        unit_scores(criterion, head_ch, lay.head_dim), lay.per_group, cut.heads_per_group
    )
    neurons = unit_scores(criterion, ffn_ch, 1).argsort(stable=True)[: cut.ffn_neurons].sort()
    ffn = neurons.values
    if compensate and stats is not None:
        d = lay.head_dim
        channels = (heads[:, None] * d + torch.arange(d)[None, :]).flatten()
        compensate_bias(p["o_proj"], channels, stats["attn"].mean)
        compensate_bias(p["down_proj"], ffn, stats["ffn"].mean)
    cut_heads(block, heads)
    cut_ffn(block, ffn)
    return {"heads": heads.tolist(), "ffn": ffn.tolist()}


def _block_params(layers: nn.ModuleList) -> int:
    return sum(p.numel() for p in layers.parameters())


def prune_blockwise(
    model: nn.Module,
    calibration: torch.Tensor,
    *,
    criterion: str = "flap",
    head_ratio: float = 0.0,
    ffn_ratio: float | None = None,
    target: float | None = None,
    bias_compensation: bool | None = None,
    inplace: bool = False,
) -> BlockwiseResult:
    """Prune query heads (within KV groups) and FFN neurons of every decoder block, block
    by block on calibration activations (module docstring).

    Args:
        model: A Llama-layout causal LM (``model(input_ids=...)``; ``model.model.layers``).
        calibration: ``(N, L)`` int token ids (e.g. :func:`prunekit.data.text.calibration_batch`).
        criterion: ``"flap"``, ``"wanda_sp"`` or ``"magnitude"`` (:mod:`.criteria`).
        head_ratio: Fraction of query heads to remove (rounded per KV group, with a warning).
        ffn_ratio: Fraction of FFN neurons to remove; or give ``target`` instead.
        target: Fraction of the blocks' projection parameters to remove (heads first, the FFN
            fills the rest).
        bias_compensation: Add the removed channels' mean contribution as a bias to
            ``o_proj``/``down_proj``; default ``True`` for ``flap``, else ``False``.
        inplace: Cut ``model`` itself (default: a deep copy is cut).

    Returns:
        The :class:`BlockwiseResult`; ``result.model.config`` describes the pruned widths.

    Raises:
        ConfigError: If an argument is malformed or the model is not Llama-layout.
    """
    if criterion not in CRITERIA:
        raise ConfigError(f"prune_blockwise: criterion {criterion!r} unknown; use {list(CRITERIA)}")
    if not isinstance(calibration, torch.Tensor) or calibration.dim() != 2:
        raise ConfigError("prune_blockwise: calibration must be an (N, L) tensor of token ids")
    start = time.perf_counter()
    compensate = criterion == "flap" if bias_compensation is None else bool(bias_compensation)
    model = model if inplace else copy.deepcopy(model)
    layers = decoder_layers(model)
    hidden = projections(layers[0])["o_proj"].out_features
    cut = uniform_cut(
        BlockLayout(layers[0]), hidden, head_ratio=head_ratio, ffn_ratio=ffn_ratio, target=target
    )
    before = _block_params(layers)
    needs_data = criterion != "magnitude" or compensate
    was_training = model.training
    model.eval()
    removed = []
    with torch.no_grad():
        chunks = (
            capture_block_inputs(model, layers[0], calibration.long(), batch=CALIBRATION_BATCH)
            if needs_data
            else []
        )
        for i, block in enumerate(layers):
            stats = _statistics(block, chunks) if needs_data else None
            removed.append(_prune_block(block, criterion, stats, cut, compensate))
            if needs_data and i + 1 < len(layers):
                chunks = run_block(block, chunks)
    model.train(was_training)
    sync_llm_config(model)
    seconds = time.perf_counter() - start
    after = _block_params(layers)
    return BlockwiseResult(model, cut, criterion, compensate, (before, after), seconds, removed)
