"""Structured pruning of decoder language models, calibrated block by block (issue #18).

:func:`prune_blockwise` removes query heads within each KV group and FFN neurons of every
Llama-layout decoder block, scoring them with Wanda-sp, FLAP's fluctuation (with its bias
compensation) or weight magnitude on calibration activations collected one block at a time.
"""

from __future__ import annotations

from ..surgery.llama_blocks import cut_ffn, cut_heads, decoder_layers, layout_of, sync_llm_config
from .blockwise import BlockwiseResult, prune_blockwise, select_heads
from .budget import UniformCut, uniform_cut
from .criteria import CRITERIA, ChannelStats, channel_scores, compensate_bias, unit_scores

__all__ = [
    "CRITERIA",
    "BlockwiseResult",
    "ChannelStats",
    "UniformCut",
    "channel_scores",
    "compensate_bias",
    "cut_ffn",
    "cut_heads",
    "decoder_layers",
    "layout_of",
    "prune_blockwise",
    "select_heads",
    "sync_llm_config",
    "uniform_cut",
    "unit_scores",
]
