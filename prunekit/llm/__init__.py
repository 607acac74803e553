"""Pruning decoder language models (LLaMA layout, grouped-query attention), calibrated block
by block (issue #18; docs/LLM.md).

- :func:`prune_blockwise`: query heads within each KV group and FFN neurons, scored by
  Wanda-sp, FLAP's fluctuation, activation, Taylor or magnitude (:func:`available_llm_criteria`),
  with bias or least-squares compensation of ``o_proj``/``down_proj``, uniform or adaptive
  (FLAP's standardised scores) allocation;
- :func:`prune_depth`: whole decoder blocks, ranked by block influence;
- :func:`sparsify`: single weights (unstructured or N:M) by magnitude, Wanda or SparseGPT, with
  uniform or OWL per-block sparsity;
- :func:`distill`: logit distillation from the dense model with a time limit.
"""

from __future__ import annotations

from ..surgery.llama_blocks import cut_ffn, cut_heads, decoder_layers, layout_of, sync_llm_config
from .allocation import adaptive_cuts, standardise
from .blockwise import BlockwiseResult, prune_blockwise, select_heads
from .budget import BlockCut, UniformCut, uniform_cut
from .criteria import (
    CRITERIA,
    ChannelStats,
    available_llm_criteria,
    channel_scores,
    compensate_bias,
    get_llm_criterion,
    register_llm_criterion,
    unit_scores,
)
from .depth import DepthResult, block_influence, prune_depth
from .distill import DistillResult, distill, next_token_loss
from .lsq import lsq_refit, lsq_solution
from .owl import outlier_ratio, owl_sparsities
from .sparse import SparsityResult, sparsify
from .sparsegpt import sparsegpt_prune
from .taylor import taylor_scores

__all__ = [
    "CRITERIA",
    "BlockCut",
    "BlockwiseResult",
    "ChannelStats",
    "DepthResult",
    "DistillResult",
    "SparsityResult",
    "UniformCut",
    "adaptive_cuts",
    "available_llm_criteria",
    "block_influence",
    "channel_scores",
    "compensate_bias",
    "cut_ffn",
    "cut_heads",
    "decoder_layers",
    "distill",
    "get_llm_criterion",
    "layout_of",
    "lsq_refit",
    "lsq_solution",
    "next_token_loss",
    "outlier_ratio",
    "owl_sparsities",
    "prune_blockwise",
    "prune_depth",
    "register_llm_criterion",
    "select_heads",
    "sparsegpt_prune",
    "sparsify",
    "standardise",
    "sync_llm_config",
    "taylor_scores",
    "uniform_cut",
    "unit_scores",
]
