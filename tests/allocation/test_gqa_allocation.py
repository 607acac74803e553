"""GQA (LLaMA-style): every allocation mode keeps the query heads of each KV group together.

The engine makes one unit per KV group (its query heads, its key and value head, and the
matching o_proj columns), so every allocator cuts whole KV groups and the query heads per
KV group (``num_key_value_groups``) never change.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from zoo.common import call_model
from zoo.models_realworld import llama_gqa

import prunekit

MODES: dict[str, dict[str, Any]] = {
    "local": {"ratio": 0.5},
    "global": {"ratio": 0.5, "scope": "global"},
    "module_ratios": {"module_ratios": {"model.layers.*.self_attn.q_proj": 0.5}},
    "target_macs": {"target_macs": 0.3},
    # per step, a 2-unit group loses floor(r * 2): 0.75 in 2 linear steps cuts one KV group
    "iterative": {"ratio": 0.75, "schedule": "iterative", "steps": 2, "ramp": "linear"},
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_query_heads_per_kv_group_stay_consistent(mode: str) -> None:
    case = llama_gqa()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = prunekit.prune(case.model, case.example_inputs, **MODES[mode])
    model = res.model
    kv_heads = []
    for layer in model.model.layers:
        attn = layer.self_attn
        d, rep = attn.head_dim, attn.num_key_value_groups
        assert rep == 2 and d == 8
        assert attn.k_proj.out_features == attn.v_proj.out_features
        q_heads, kv = attn.q_proj.out_features // d, attn.k_proj.out_features // d
        assert q_heads * d == attn.q_proj.out_features == attn.o_proj.in_features
        assert q_heads == kv * rep  # every KV group keeps its 2 query heads
        kv_heads.append(kv)
    assert min(kv_heads) < 2, f"{mode}: no KV group was cut, the test would prove nothing"
    out = call_model(model, case.example_inputs)
    assert out.shape == call_model(case.model, case.example_inputs).shape
    assert torch.isfinite(out).all()


def test_gqa_macs_budget_lands_within_one_step() -> None:
    case = llama_gqa()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = prunekit.Pruner(case.model, case.example_inputs, target_macs=0.6, round_to=4)
        res = pruner.step()
    rep = pruner.budget_
    assert rep is not None
    achieved = prunekit.evaluation.count_macs(res.model, case.example_inputs)
    assert achieved == rep.achieved <= rep.target < rep.previous
