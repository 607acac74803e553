"""LLM criteria: Taylor (memory-bounded gradient folding) and activation magnitude against
hand computations, the LLM criterion registry, and the one-forward-per-block walk's
exactness; tiny random LLaMA only."""

from __future__ import annotations

import copy

import pytest
import torch

from prunekit.errors import RegistryError
from prunekit.llm import (
    ChannelStats,
    available_llm_criteria,
    channel_scores,
    decoder_layers,
    get_llm_criterion,
    prune_blockwise,
    register_llm_criterion,
    taylor_scores,
)
from prunekit.llm.activations import capture_block_inputs, run_block
from prunekit.llm.budget import BlockCut
from prunekit.llm.walk import WalkOptions, one_pass_matches, prune_block_one_pass
from tests.llm.tiny import TINY_VOCAB, make_tiny_llama


def _ids(n: int = 4, length: int = 16) -> torch.Tensor:
    return torch.randint(0, TINY_VOCAB, (n, length), generator=torch.Generator().manual_seed(1))


def _hand_taylor(model: torch.nn.Module, ids: torch.Tensor, micro: int) -> list[dict]:
    """sum over micro-batches of |w * g| per unit, from plain full backward passes."""
    out = []
    blocks = decoder_layers(model)
    acc = {id(b): {"heads": 0.0, "kv": 0.0, "ffn": 0.0} for b in blocks}
    for start in range(0, ids.shape[0], micro):
        model.zero_grad()
        batch = ids[start : start + micro]
        model(input_ids=batch, labels=batch).loss.backward()
        for b in blocks:
            a, m, d = b.self_attn, b.mlp, 8
            t = {n: (lin.weight * lin.weight.grad).abs().detach() for n, lin in (
                ("q", a.q_proj), ("k", a.k_proj), ("v", a.v_proj), ("o", a.o_proj),
                ("g", m.gate_proj), ("u", m.up_proj), ("dn", m.down_proj))}  # fmt: skip
            heads = t["q"].sum(1).reshape(-1, d).sum(1) + t["o"].sum(0).reshape(-1, d).sum(1)
            kv = (t["k"].sum(1) + t["v"].sum(1)).reshape(-1, d).sum(1)
            ffn = t["g"].sum(1) + t["u"].sum(1) + t["dn"].sum(0)
            acc[id(b)]["heads"] += heads.double()
            acc[id(b)]["kv"] += kv.double()
            acc[id(b)]["ffn"] += ffn.double()
    model.zero_grad(set_to_none=True)
    for b in blocks:
        out.append(acc[id(b)])
    return out


@pytest.mark.parametrize("micro", [1, 4])
def test_taylor_scores_match_full_backward_by_hand(micro: int) -> None:
    model, ids = make_tiny_llama(), _ids()
    hand = _hand_taylor(copy.deepcopy(model), ids, micro)
    flags = [p.requires_grad for p in model.parameters()]
    got = taylor_scores(model, ids, micro_batch=micro)
    for h, g in zip(hand, got):
        for kind in ("heads", "kv", "ffn"):
            assert torch.allclose(g[kind], h[kind], rtol=1e-4, atol=1e-9), kind
    assert [p.requires_grad for p in model.parameters()] == flags  # restored
    assert all(p.grad is None for p in model.parameters())  # every gradient freed


def test_taylor_folds_and_frees_each_gradient_as_it_arrives() -> None:
    model, ids = make_tiny_llama(), _ids(2)
    params = list(model.parameters())
    live: list[int] = []

    def count(_: torch.Tensor) -> None:  # runs before taylor's hook on the same weight
        live.append(sum(p.grad is not None for p in params))

    handles = [
        lin.weight.register_post_accumulate_grad_hook(count)
        for b in decoder_layers(model)
        for lin in (b.self_attn.q_proj, b.mlp.down_proj, b.mlp.up_proj)
    ]
    taylor_scores(model, ids, micro_batch=1)
    for h in handles:
        h.remove()
    assert len(live) == 2 * 6  # 2 micro-batches x 6 hooked weights
    assert max(live) == 1  # only the arriving gradient is alive: the others were freed
    assert all(p.grad is None for p in params)


def test_activation_criterion_is_the_mean_absolute_input() -> None:
    s = ChannelStats(3)
    s.add(torch.tensor([[1.0, -2.0, 0.0], [-3.0, 2.0, 4.0]]))
    w = torch.ones(2, 3)
    assert channel_scores("activation", w, s).tolist() == [2.0, 2.0, 2.0]


def test_llm_registry_names_the_valid_criteria() -> None:
    assert {"flap", "wanda_sp", "activation", "taylor", "magnitude", "random"} <= set(
        available_llm_criteria()
    )
    with pytest.raises(RegistryError, match="valid names: .*flap.*taylor"):
        get_llm_criterion("flop")
    with pytest.raises(RegistryError, match="already registered"):
        register_llm_criterion("flap", lambda w, s, p: w.sum(0))
    with pytest.raises(RegistryError, match="unknown LLM criterion 'flop'"):
        prune_blockwise(make_tiny_llama(), _ids(), criterion="flop", ffn_ratio=0.25)
    assert get_llm_criterion("taylor").gradient and not get_llm_criterion("flap").gradient


def test_taylor_prunes_the_lowest_taylor_units() -> None:
    model, ids = make_tiny_llama(), _ids()
    scores = taylor_scores(copy.deepcopy(model), ids)
    res = prune_blockwise(model, ids, criterion="taylor", head_ratio=0.5, ffn_ratio=0.25)
    for sc, rem in zip(scores, res.removed):
        assert rem["ffn"] == sorted(sc["ffn"].argsort()[:12].tolist())
        pairs = sc["heads"].reshape(2, 2).argmin(1) + torch.tensor([0, 2])
        assert rem["heads"] == pairs.tolist()
    assert res.model.config.num_attention_heads == 2
    assert torch.isfinite(res.model(ids).logits).all()


@pytest.mark.parametrize("compensation", ["none", "bias", "lsq"])
def test_one_pass_output_equals_the_pruned_block_forward(compensation: str) -> None:
    model, ids = make_tiny_llama(), _ids()
    block = decoder_layers(model)[0]
    with torch.no_grad():
        chunks = capture_block_inputs(model, block, ids, batch=2)
        original = [(h.clone(), kw) for h, kw in chunks]
        assert one_pass_matches(block, chunks[0])
        opts = WalkOptions("wanda_sp", compensation, 0.01)
        rem = prune_block_one_pass(block, chunks, BlockCut(1, 12), opts)
        again = run_block(block, original)
    assert len(rem["heads"]) == 2 and len(rem["ffn"]) == 12
    for (h, _), (ref, _) in zip(chunks, again):
        assert torch.allclose(h, ref, atol=1e-5)


def test_two_pass_fallback_equals_one_pass_when_attention_is_not_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a head cut both walks see the same FFN inputs: same choice, same refit."""
    model, ids = make_tiny_llama(), _ids()
    one = prune_blockwise(model, ids, criterion="flap", compensation="lsq", ffn_ratio=0.25)
    monkeypatch.setattr("prunekit.llm.blockwise.one_pass_matches", lambda *a: False)
    two = prune_blockwise(model, ids, criterion="flap", compensation="lsq", ffn_ratio=0.25)
    assert one.one_pass and not two.one_pass and one.removed == two.removed
    with torch.no_grad():
        assert torch.allclose(one.model(ids).logits, two.model(ids).logits, atol=1e-4)
