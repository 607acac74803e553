"""Block-wise structured LLM pruning (prunekit.llm): GQA-coherent cuts, criteria against hand
computations, FLAP's bias compensation, uniform allocation; tiny random LLaMA only."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
import transformers
from torch import nn

from prunekit.errors import ConfigError
from prunekit.llm import (
    ChannelStats,
    channel_scores,
    compensate_bias,
    cut_ffn,
    cut_heads,
    decoder_layers,
    layout_of,
    prune_blockwise,
    select_heads,
    uniform_cut,
    unit_scores,
)
from tests.llm.tiny import TINY_VOCAB, tiny_llama_config


def _model(seed: int = 0) -> nn.Module:
    """3 query heads per KV group (6 heads, 2 KV heads, head dim 8), hidden 48, FFN 48."""
    torch.manual_seed(seed)
    cfg = tiny_llama_config(
        hidden_size=48, num_attention_heads=6, num_key_value_heads=2, head_dim=8
    )
    return transformers.LlamaForCausalLM(cfg).eval()


def _ids(n: int = 4, length: int = 16) -> torch.Tensor:
    return torch.randint(0, TINY_VOCAB, (n, length), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("criterion", ["flap", "wanda_sp", "magnitude"])
def test_blockwise_keeps_kv_heads_and_equal_query_groups(criterion: str) -> None:
    dense = _model()
    before = copy.deepcopy(dense.state_dict())
    res = prune_blockwise(dense, _ids(), criterion=criterion, head_ratio=1 / 3, target=0.3)
    cfg = res.model.config
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (4, 2, 8)
    assert cfg.intermediate_size == 48 - res.cut.ffn_neurons and res.cut.ffn_neurons > 0
    for block, removed in zip(decoder_layers(res.model), res.removed):
        assert [h // 3 for h in removed["heads"]] == [0, 1]  # one head from each KV group
        assert block.self_attn.k_proj.out_features == 16
        assert block.self_attn.num_key_value_groups == 2
        assert block.mlp.intermediate_size == cfg.intermediate_size
    assert all(torch.equal(v, dense.state_dict()[k]) for k, v in before.items())  # untouched
    ids = _ids(1, 6)
    out = res.model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape == (1, 10)
    assert torch.isfinite(res.model(ids).logits).all()
    assert abs(res.cut.block_fraction - 0.3) < 0.02  # of the projection parameters


def test_slicer_equals_zeroing_the_removed_units() -> None:
    dense = _model()
    zeroed = copy.deepcopy(dense)
    ids = _ids(2, 12)
    heads, ffn = torch.tensor([2, 4]), torch.tensor([0, 5, 7])
    for block in decoder_layers(zeroed):
        cols = (heads[:, None] * 8 + torch.arange(8)).flatten()
        with torch.no_grad():
            block.self_attn.o_proj.weight[:, cols] = 0
            block.mlp.down_proj.weight[:, ffn] = 0
    for block in decoder_layers(dense):
        cut_heads(block, heads)
        cut_ffn(block, ffn)
        assert layout_of(block).num_heads == 4
    assert torch.allclose(dense(ids).logits, zeroed(ids).logits, atol=1e-5)


def test_cut_heads_refuses_unequal_kv_groups() -> None:
    block = decoder_layers(_model())[0]
    with pytest.raises(ConfigError, match="per KV group"):
        cut_heads(block, torch.tensor([0, 1]))  # both from group 0


def test_scores_match_a_hand_computation() -> None:
    w = torch.tensor([[1.0, -2.0, 0.5], [3.0, 1.0, -1.0]])
    x = torch.tensor([[1.0, 0.0, 2.0], [3.0, 4.0, 2.0]])  # 2 tokens, 3 input channels
    stats = ChannelStats(3)
    stats.add(x[:1])
    stats.add(x[1:])
    # ||X_j||: sqrt(10), 4, sqrt(8); sum_i |W_ij|: 4, 3, 1.5
    wanda = channel_scores("wanda_sp", w, stats)
    assert torch.allclose(
        wanda, torch.tensor([4 * math.sqrt(10), 12.0, 1.5 * math.sqrt(8)]).double()
    )
    # Var_j: 1, 4, 0; ||W_:,j||^2: 10, 5, 1.25
    flap = channel_scores("flap", w, stats)
    assert torch.allclose(flap, torch.tensor([10.0, 20.0, 0.0]).double())
    rows = torch.tensor([[1.0, 1.0], [0.0, 2.0], [2.0, 0.0]])  # producer rows of 3 channels
    mag = unit_scores("magnitude", channel_scores("magnitude", w, None, producers=[rows]), 1)
    assert torch.allclose(mag, torch.tensor([12.0, 9.0, 5.25]).double().sqrt())
    assert unit_scores("flap", flap, 3).tolist() == [30.0]  # a head sums its channels
    assert select_heads(torch.tensor([3.0, 1, 2, 0, 5, 4]), 3, 1).tolist() == [1, 3]


def test_blockwise_removes_the_lowest_wanda_neurons_of_block_zero() -> None:
    dense, ids = _model(), _ids()
    grab: list[torch.Tensor] = []
    down = decoder_layers(dense)[0].mlp.down_proj
    handle = down.register_forward_pre_hook(lambda _, a: grab.append(a[0].reshape(-1, 48)))
    with torch.no_grad():
        dense(ids)
    handle.remove()
    x = torch.cat(grab).double()
    hand = down.weight.detach().double().abs().sum(0) * x.square().sum(0).sqrt()
    res = prune_blockwise(dense, ids, criterion="wanda_sp", ffn_ratio=0.25)
    assert res.removed[0]["ffn"] == sorted(hand.argsort()[:12].tolist())


def test_flap_bias_compensation_is_exact_on_the_mean_input() -> None:
    torch.manual_seed(0)
    for bias in (False, True):
        lin = nn.Linear(6, 4, bias=bias)
        dense = copy.deepcopy(lin)
        stats = ChannelStats(6)
        stats.add(torch.randn(50, 6) * 3 + torch.arange(6.0))
        removed = torch.tensor([1, 4])
        compensate_bias(lin, removed, stats.mean)
        assert lin.bias is not None
        keep = torch.tensor([0, 2, 3, 5])
        pruned = nn.Linear(4, 4)
        with torch.no_grad():
            pruned.weight.copy_(lin.weight[:, keep])
            pruned.bias.copy_(lin.bias)
        mean = stats.mean.float()
        assert torch.allclose(pruned(mean[keep]), dense(mean), atol=1e-5)


def test_flap_adds_biases_the_config_describes() -> None:
    res = prune_blockwise(_model(), _ids(), criterion="flap", head_ratio=1 / 3, ffn_ratio=0.25)
    cfg = res.model.config
    assert cfg.attention_bias and cfg.mlp_bias and res.bias_compensation
    block = decoder_layers(res.model)[1]
    assert block.self_attn.o_proj.bias is not None and block.mlp.down_proj.bias is not None
    assert torch.count_nonzero(block.self_attn.q_proj.bias) == 0
    reloaded = transformers.LlamaForCausalLM(cfg)
    reloaded.load_state_dict(res.model.state_dict())  # the config describes every tensor


def test_regression_unreachable_head_ratio_warns_with_achievable_ratios() -> None:
    lay = layout_of(decoder_layers(_model())[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cut = uniform_cut(lay, 48, head_ratio=0.2, target=0.3)
    assert cut.heads_per_group == 1
    assert "achievable ratios: ['0.000', '0.333', '0.667']" in str(caught[0].message)
    with pytest.raises(ConfigError, match="exactly one of ffn_ratio and target"):
        uniform_cut(lay, 48, ffn_ratio=0.2, target=0.2)
    with pytest.raises(ConfigError, match="more than target"), pytest.warns(UserWarning):
        uniform_cut(lay, 48, head_ratio=0.67, target=0.05)
