"""Save/load of pruned decoder LLMs: what ``config.json`` describes reloads with plain
transformers (uniform widths, query heads per KV group, FLAP biases with the bias flags,
removed blocks); the rest (per-block widths, undeclared biases, a stale layer count)
reloads with ``prunekit.export.from_pretrained``, which cuts the model built from the
config to the saved shapes. Tiny random LLaMA, plus one check on the real SmolLM2-135M."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import transformers
from torch import nn

import prunekit
from prunekit.errors import ExportError
from prunekit.llm import cut_ffn, cut_heads, decoder_layers, prune_blockwise, prune_depth
from prunekit.surgery.llama_blocks import layout_of, shrink_block
from tests.llm.tiny import TINY_VOCAB, make_tiny_llama

Auto = transformers.AutoModelForCausalLM


def _ids(n: int = 4, length: int = 16) -> torch.Tensor:
    return torch.randint(0, TINY_VOCAB, (n, length), generator=torch.Generator().manual_seed(1))


def _same(a: nn.Module, b: nn.Module, ids: torch.Tensor | None = None) -> None:
    """Identical logits (no tolerance) and identical greedy generation with the KV cache."""
    ids = _ids() if ids is None else ids
    with torch.no_grad():
        assert torch.equal(a(ids).logits, b(ids).logits)
        prompt = ids[:1, :5]
        ga = a.generate(prompt, max_new_tokens=6, do_sample=False)
        gb = b.generate(prompt, max_new_tokens=6, do_sample=False)
    assert ga.shape == (1, 11) and torch.equal(ga, gb)


def _save(model: nn.Module, path: Path) -> list[str]:
    """``prunekit.export.save_pretrained``; returns its warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prunekit.export.save_pretrained(model, path)
    return [str(w.message) for w in caught if "save_pretrained" in str(w.message)]


def _nonuniform() -> nn.Module:
    """3 blocks: FFN cut in block 0, one query head per KV group in block 1, an o_proj bias
    (no ``attention_bias`` flag) in block 2: no single config describes it."""
    model = make_tiny_llama(num_hidden_layers=3)
    layers = decoder_layers(model)
    cut_ffn(layers[0], torch.tensor([1, 5, 9, 30]))
    cut_heads(layers[1], torch.tensor([1, 3]))
    torch.manual_seed(3)
    layers[2].self_attn.o_proj.bias = nn.Parameter(torch.randn(32))
    return model


def test_uniform_flap_model_reloads_with_plain_transformers(tmp_path: Path) -> None:
    res = prune_blockwise(
        make_tiny_llama(num_hidden_layers=3), _ids(), criterion="flap", head_ratio=0.5, target=0.3
    )
    pruned = res.model
    cfg = pruned.config
    assert (cfg.num_attention_heads, cfg.num_key_value_heads) == (2, 2)
    assert cfg.attention_bias and cfg.mlp_bias  # FLAP's biases are declared ...
    q = decoder_layers(pruned)[0].self_attn.q_proj
    assert q.bias is not None and not q.bias.any()  # ... siblings carry zero biases
    assert _save(pruned, tmp_path) == []
    again = Auto.from_pretrained(tmp_path).eval()
    assert decoder_layers(again)[0].self_attn.o_proj.bias is not None
    _same(pruned, again)
    _same(pruned, prunekit.export.from_pretrained(Auto, tmp_path))


def test_depth_pruned_model_reloads_with_plain_transformers(tmp_path: Path) -> None:
    res = prune_depth(make_tiny_llama(num_hidden_layers=4), _ids(), blocks=2, progress=False)
    assert _save(res.model, tmp_path) == []
    assert json.loads((tmp_path / "config.json").read_text())["num_hidden_layers"] == 2
    again = Auto.from_pretrained(tmp_path).eval()
    assert [b.self_attn.layer_idx for b in decoder_layers(again)] == [0, 1]
    _same(res.model, again)


def test_width_then_depth_pruned_model_reloads_with_plain_transformers(tmp_path: Path) -> None:
    dense = make_tiny_llama(num_hidden_layers=4)
    narrow = prune_blockwise(dense, _ids(), criterion="flap", head_ratio=0.5, target=0.3).model
    short = prune_depth(narrow, _ids(), blocks=1, progress=False).model
    assert _save(short, tmp_path) == []
    again = Auto.from_pretrained(tmp_path).eval()
    assert again.config.num_hidden_layers == 3 and again.config.attention_bias
    _same(short, again)


def test_nonuniform_widths_and_biases_reload_with_prunekit(tmp_path: Path) -> None:
    model = _nonuniform()
    warned = _save(model, tmp_path)
    assert len(warned) == 1 and "prunekit.export.from_pretrained" in warned[0]
    with pytest.raises(RuntimeError, match="mismatched"):
        Auto.from_pretrained(tmp_path)  # transformers cannot rebuild it
    again = prunekit.export.from_pretrained(Auto, tmp_path)
    widths = [(layout_of(b).num_heads, layout_of(b).intermediate) for b in decoder_layers(again)]
    assert widths == [(4, 44), (2, 48), (4, 48)]
    assert decoder_layers(again)[1].self_attn.num_key_value_groups == 1
    assert decoder_layers(again)[1].mlp.intermediate_size == 48
    assert decoder_layers(again)[0].mlp.intermediate_size == 44
    _same(model, again)
    _same(model, prunekit.export.from_pretrained(transformers.LlamaForCausalLM, tmp_path))


def test_regression_undeclared_bias_is_not_dropped(tmp_path: Path) -> None:
    """A bias on ``o_proj`` that ``attention_bias`` does not declare: transformers drops it
    silently (an "unexpected key"), so the reloaded model computes something else; prunekit's
    loader must keep it."""
    model = make_tiny_llama(num_hidden_layers=2)
    torch.manual_seed(4)
    decoder_layers(model)[1].mlp.down_proj.bias = nn.Parameter(torch.randn(32))
    model.save_pretrained(tmp_path)  # plain transformers save: no prunekit record at all
    dropped = Auto.from_pretrained(tmp_path).eval()
    assert decoder_layers(dropped)[1].mlp.down_proj.bias is None  # the trap
    again = prunekit.export.from_pretrained(Auto, tmp_path)
    assert decoder_layers(again)[0].mlp.down_proj.bias is None  # only where it was saved
    _same(model, again)


def test_stale_layer_count_drops_the_blocks_the_checkpoint_lacks(tmp_path: Path) -> None:
    model = make_tiny_llama(num_hidden_layers=4)
    del decoder_layers(model)[1:3]  # by hand: config still says 4, layer_idx not renumbered
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["num_hidden_layers"] == 4
    again = prunekit.export.from_pretrained(Auto, tmp_path)
    assert again.config.num_hidden_layers == 2
    assert [b.self_attn.layer_idx for b in decoder_layers(again)] == [0, 1]
    with torch.no_grad():
        assert torch.equal(model(_ids(), use_cache=False).logits, again(_ids()).logits)


def test_bf16_checkpoint_stays_bf16(tmp_path: Path) -> None:
    model = _nonuniform().to(torch.bfloat16)
    _save(model, tmp_path)
    again = prunekit.export.from_pretrained(Auto, tmp_path)
    assert {p.dtype for p in again.parameters()} == {torch.bfloat16}
    _same(model, again)


def test_shrink_block_drops_trailing_kv_groups_coherently() -> None:
    model = make_tiny_llama(num_hidden_layers=2)
    block = decoder_layers(model)[0]
    shrink_block(block, num_heads=2, num_kv_heads=1, intermediate=40)
    lay = layout_of(block)
    assert (lay.num_heads, lay.num_kv_heads, lay.per_group, lay.intermediate) == (2, 1, 2, 40)
    assert block.self_attn.num_key_value_groups == 2
    assert torch.isfinite(model(_ids()).logits).all()
    with pytest.raises(prunekit.errors.ConfigError, match="must shrink"):
        shrink_block(block, num_heads=4, num_kv_heads=2, intermediate=40)


def test_checkpoint_wider_than_its_config_is_an_export_error(tmp_path: Path) -> None:
    model = make_tiny_llama(num_hidden_layers=2)
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["intermediate_size"] = 24  # narrower than the saved FFN (48)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ExportError, match=r"model\.layers\.0 does not fit .*FFN 24 to .* / 48"):
        prunekit.export.from_pretrained(Auto, tmp_path)


def test_real_smollm2_uniform_flap_round_trip(tmp_path: Path) -> None:
    """SmolLM2-135M, one query head per KV group and 20% of the block params (FLAP + bias,
    a short calibration): identical logits and generation after plain transformers reload."""
    model, tok = prunekit.models.load_llm("smollm2-135m")
    calib = tok("The capital of France is Paris. " * 4, return_tensors="pt")["input_ids"]
    res = prune_blockwise(model, calib, criterion="flap", head_ratio=0.34, target=0.2)
    assert (res.model.config.num_attention_heads, res.model.config.num_key_value_heads) == (6, 3)
    res.model.save_pretrained(tmp_path)
    again = Auto.from_pretrained(tmp_path).eval()
    _same(res.model, again, tok("The capital of France is", return_tensors="pt")["input_ids"])
