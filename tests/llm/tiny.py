"""Tiny random LLaMA models for the language-model tests (built from the config class; no
download, milliseconds)."""

from __future__ import annotations

from typing import Any

import torch
import transformers
from torch import nn

TINY_VOCAB = 61


def tiny_llama_config(**overrides: Any) -> Any:
    """A 2-block LLaMA: hidden 32, 4 query heads sharing 2 KV heads, SwiGLU 48, vocab 61."""
    settings: dict[str, Any] = {
        "vocab_size": TINY_VOCAB,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "tie_word_embeddings": True,
    }
    settings.update(overrides)
    return transformers.LlamaConfig(**settings)


def make_tiny_llama(seed: int = 0, **overrides: Any) -> nn.Module:
    """A random tiny ``LlamaForCausalLM`` in eval mode (weights drawn by ``seed``)."""
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(tiny_llama_config(**overrides)).eval()
