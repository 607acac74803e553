"""``attention="head_dims"``: prune the same dims of every head instead of whole heads."""

from __future__ import annotations

import pytest
import torch

import prunekit
from prunekit import ConfigError

from .test_realworld import gpt2_with_handler


def _attn(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules() if type(m).__name__ == "GPT2Attention"]


def test_gpt2_head_dims_shrink_every_head_and_keep_the_head_count() -> None:
    case = gpt2_with_handler()
    before = [(a.num_heads, a.head_dim) for a in _attn(case.model)]
    graph = prunekit.analyze(case.model, case.example_inputs, attention="head_dims")
    c_attn = [g for g in graph.groups if g.key.endswith("attn.c_attn.weight:1")]
    assert c_attn and all(g.num_units == before[0][1] for g in c_attn)
    # unit d = dim d of q, k and v of every head: 3 * heads positions of c_attn's output
    assert all(m.indices.shape[1] == 3 * before[0][0] for m in c_attn[0].members[:1])
    res = prunekit.prune(
        case.model, case.example_inputs, module_ratios={"*.c_attn": 0.5}, attention="head_dims"
    )
    after = [(a.num_heads, a.head_dim) for a in _attn(res.model)]
    assert after == [(h, d // 2) for h, d in before]
    assert res.plan.meta["attention"] == "head_dims"
    # the plan replays: the engine re-traces with the same unit choice
    fresh = res.plan.apply(case.model, case.example_inputs)
    assert [(a.num_heads, a.head_dim) for a in _attn(fresh)] == after


def test_gpt2_head_dim_cut_is_not_exact_because_its_scale_reads_the_head_size() -> None:
    """GPT-2 divides by ``value.size(-1) ** 0.5``: a head-dim cut changes the softmax
    temperature, however small the change in the outputs (issue #15)."""
    case = gpt2_with_handler()
    res = prunekit.prune(
        case.model, case.example_inputs, module_ratios={"*.c_attn": 0.25},
        attention="head_dims", verify="exact",
    )  # fmt: skip
    c_attn = [g for g in res.graph.groups if g.key.endswith("c_attn.weight:1")]
    assert c_attn and not any(g.exact for g in c_attn)
    assert all(
        any("reads the size of a prunable dim (shape[-1] = 8)" in r for r in g.reasons)
        for g in c_attn
    )
    # whole heads keep the head size: the same scale, an exact cut
    heads = prunekit.analyze(case.model, case.example_inputs, attention="heads")
    assert all(g.exact for g in heads.groups if g.key.endswith("c_attn.weight:1"))


def test_unknown_attention_unit_lists_the_valid_ones() -> None:
    case = gpt2_with_handler()
    with pytest.raises(ConfigError, match="'heads'.*'head_dims'"):
        prunekit.analyze(case.model, case.example_inputs, attention="dims")
