"""Allocation across decoder blocks (prunekit.llm.allocation, budget.round_ffn): FLAP's
standardised global scores by hand, round_to, per-KV-group-uniform heads, per-block widths
recorded and coherent; tiny random LLaMA only."""

from __future__ import annotations

import pytest
import torch

from prunekit.errors import ConfigError
from prunekit.llm import adaptive_cuts, decoder_layers, layout_of, prune_blockwise, uniform_cut
from prunekit.llm.budget import BlockCut, round_ffn
from tests.llm.tiny import TINY_VOCAB, make_tiny_llama


def _ids(n: int = 4, length: int = 16) -> torch.Tensor:
    return torch.randint(0, TINY_VOCAB, (n, length), generator=torch.Generator().manual_seed(1))


def test_adaptive_removes_the_globally_lowest_standardised_units() -> None:
    lay = layout_of(decoder_layers(make_tiny_llama())[0])  # hidden 32, FFN 48, 2x2 heads
    # block 0: one outlier, the rest tied -> z = -0.1459 for 47 neurons, 6.856 for one
    # block 1: a ramp -> z spread from -1.70 to 1.70; its lowest 6 are below -1.42
    f0 = torch.zeros(48)
    f0[0] = 100.0
    f1 = torch.arange(48.0)
    heads = torch.tensor([1.0, 2.0, 3.0, 4.0])
    scores = [{"heads": heads, "ffn": f0}, {"heads": heads, "ffn": f1}]
    per_block = 2 * 32 * 4 * 8 + 2 * 32 * 2 * 8 + 3 * 32 * 48  # projection params of a block
    target = 6 * 3 * 32 / (2 * per_block)  # exactly six FFN neurons
    cuts = adaptive_cuts([lay, lay], 32, scores, target=target, units=("ffn",))
    # the six lowest z-scores overall are all in block 1 (-1.70 ... -1.42 < -0.1459)
    assert cuts == [BlockCut(0, 0), BlockCut(0, 6)]
    z1 = (f1 - f1.mean()) / f1.std(unbiased=False)
    z0 = (f0 - f0.mean()) / f0.std(unbiased=False)
    assert float(z1[5]) < float(z0[1]) == pytest.approx(-0.1459, abs=1e-4)


def test_adaptive_head_tranches_are_per_kv_group_uniform() -> None:
    lay = layout_of(decoder_layers(make_tiny_llama())[0])
    # block 0's head z-scores are [-1, 1, -1, 1]: its first tranche (one head of each KV
    # group, z -1) is the lowest unit; constant FFN / head scores standardise to z = 0
    low_heads = {"heads": torch.tensor([0.0, 10.0, 0.0, 10.0]), "ffn": torch.ones(48)}
    flat_heads = {"heads": torch.tensor([5.0, 5.0, 5.0, 5.0]), "ffn": torch.ones(48)}
    head_cost = 2 * 2 * 32 * 8  # one tranche: one head in each of the 2 KV groups
    per_block = 2 * 32 * 4 * 8 + 2 * 32 * 2 * 8 + 3 * 32 * 48
    cuts = adaptive_cuts(
        [lay, lay], 32, [low_heads, flat_heads], target=head_cost / (2 * per_block)
    )
    assert cuts == [BlockCut(1, 0), BlockCut(0, 0)]


def test_round_to_and_bad_arguments() -> None:
    assert round_ffn(410, 1536, 64) == 384 and (1536 - 384) % 64 == 0
    assert round_ffn(47.9, 48, 16) == 32  # at least round_to neurons stay
    lay = layout_of(decoder_layers(make_tiny_llama())[0])
    assert uniform_cut(lay, 32, ffn_ratio=0.3, round_to=16).ffn_neurons == 16
    with pytest.raises(ConfigError, match="round_to must be a positive int"):
        round_ffn(3, 48, 0)
    with pytest.raises(ConfigError, match=r"units=\['att'\]"):
        adaptive_cuts([lay], 32, [{"ffn": torch.ones(48)}], target=0.1, units=("att",))
    with pytest.raises(ConfigError, match=r"target must be in \(0, 1\)"):
        adaptive_cuts([lay], 32, [{"ffn": torch.ones(48)}], target=1.0)


@pytest.mark.parametrize("criterion", ["flap", "taylor"])
def test_adaptive_prune_blockwise_records_per_block_widths(criterion: str) -> None:
    model, ids = make_tiny_llama(num_hidden_layers=3), _ids()
    res = prune_blockwise(
        model, ids, criterion=criterion, allocation="adaptive", target=0.3, round_to=8
    )
    assert res.cut is None and res.allocation == "adaptive" and len(res.cuts) == 3
    before, after = res.block_params
    assert 0.2 < 1 - after / before < 0.4
    widths = [
        (layout_of(b).num_heads, layout_of(b).num_kv_heads, layout_of(b).intermediate)
        for b in decoder_layers(res.model)
    ]
    assert all(inter % 8 == 0 and kv == 2 and heads % 2 == 0 for heads, kv, inter in widths)
    for block, (heads, kv, inter) in zip(decoder_layers(res.model), widths):
        assert block.self_attn.num_key_value_groups == heads // kv
        assert block.mlp.intermediate_size == inter
    cfg = res.model.config
    if len(set(widths)) > 1:
        assert [tuple(w.values()) for w in cfg.prunekit_layer_widths] == widths
    out = res.model.generate(ids[:1, :5], max_new_tokens=3, do_sample=False)
    assert out.shape == (1, 8) and torch.isfinite(res.model(ids).logits).all()
    with pytest.raises(ConfigError, match="takes target="):
        prune_blockwise(model, ids, allocation="adaptive", ffn_ratio=0.2)


def test_regression_sync_config_accepts_per_block_widths() -> None:
    """Blocks of different widths used to make sync_llm_config raise; adaptive allocation
    produces them, so the widths are recorded per block instead."""
    from prunekit.llm import cut_ffn, sync_llm_config

    model = make_tiny_llama()
    cut_ffn(decoder_layers(model)[0], torch.arange(8))
    sync_llm_config(model)
    widths = model.config.prunekit_layer_widths
    assert [w["intermediate_size"] for w in widths] == [40, 48]
    assert model.config.intermediate_size == 48 and widths[0]["num_key_value_heads"] == 2
    cut_ffn(decoder_layers(model)[1], torch.arange(8))
    sync_llm_config(model)  # uniform again: the config describes it, the record goes
    assert model.config.intermediate_size == 40
    assert not hasattr(model.config, "prunekit_layer_widths")
