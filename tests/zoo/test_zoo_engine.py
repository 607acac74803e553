"""The engine's invariant on every zoo architecture, one named regression test each.

zero every member slice of some units -> run -> prune those units -> run -> identical.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

import prunekit
from prunekit.testing import check_equivalence

from . import ZOO, call_model

# (prunable groups, exact groups) per model: exactness cannot quietly be given up.
# Non-exact groups are the LayerNorm-normalised residual streams of the transformers.
PINNED: dict[str, tuple[int, int]] = {
    "mlp": (2, 2),
    "vgg_bn": (5, 5),
    "resnet_basic": (6, 6),
    "resnet_bottleneck": (10, 10),
    "densenet": (12, 12),
    "mobilenetv2": (9, 9),
    "resnext": (8, 8),
    "squeeze_excitation": (4, 4),
    "shufflenet": (8, 8),
    "conv1d": (2, 2),
    "conv3d": (2, 2),
    "unet": (12, 12),
    "chunk_split": (1, 1),
    "lstm": (2, 2),
    "gru": (2, 2),
    "transformer_mha": (5, 4),
    "transformer_handwritten": (5, 4),
    "tied_embedding": (2, 1),
    "vit": (5, 4),
    "multitask_dict": (3, 3),
    "mlp_dict_input": (3, 3),
}
NAMES = list(ZOO)


def _outputs(model: nn.Module, inputs: Any) -> list[Tensor]:
    model.eval()
    with torch.no_grad():
        return prunekit.graph.flatten_tensors(call_model(model, inputs))


def test_every_zoo_model_is_pinned() -> None:
    assert set(PINNED) == set(ZOO)


@pytest.mark.parametrize("name", NAMES)
def test_groups_and_exactness_are_pinned(name: str) -> None:
    case = ZOO[name]()
    graph = prunekit.analyze(case.model, case.example_inputs)
    exact = sum(g.exact for g in graph.groups)
    assert (len(graph.groups), exact) == PINNED[name], str(graph)
    for g in graph.groups:
        assert g.exact or g.reasons, f"non-exact group {g.key} without a reason"
        conv_like = any(m.name.endswith("weight") and m.dim == 0 for m in g.members)
        if case.kind == "cnn" and conv_like:
            assert g.exact, f"conv channel group {g.key} must be exact"


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=4, deadline=None)
@given(ratio=st.floats(0.05, 0.9), seed=st.integers(0, 10_000))
def test_equivalence_property(name: str, ratio: float, seed: int) -> None:
    case = ZOO[name]()
    report = check_equivalence(case.model, case.example_inputs, ratio=ratio, seed=seed)
    assert report.groups_tested == sum(
        g.exact and g.num_units > 1 for g in prunekit.analyze(case.model, case.example_inputs)
    )
    assert report.units_removed > 0 and report.params_removed > 0


@pytest.mark.parametrize("name", NAMES)
def test_prune_reduces_cost_and_trains(name: str) -> None:
    case = ZOO[name]()
    result = prunekit.prune(case.model, case.example_inputs, ratio=0.5)
    summary = result.summary()
    assert summary.after.params < summary.before.params
    assert summary.after.macs <= summary.before.macs
    if case.kind != "seq":  # RNN MACs are not counted by the FLOP counter
        assert summary.after.macs < summary.before.macs
    pruned = result.model
    pruned.train()
    out = prunekit.graph.flatten_tensors(call_model(pruned, case.example_inputs))
    loss = sum(o.float().pow(2).mean() for o in out if o.is_floating_point())
    assert isinstance(loss, Tensor)
    loss.backward()
    torch.optim.SGD(pruned.parameters(), lr=0.01).step()
    for p in pruned.parameters():
        assert torch.isfinite(p).all()


@pytest.mark.parametrize("name", NAMES)
def test_global_scope(name: str) -> None:
    case = ZOO[name]()
    result = prunekit.prune(case.model, case.example_inputs, ratio=0.5, scope="global")
    want = [o.shape for o in _outputs(case.model, case.example_inputs)]
    assert [o.shape for o in _outputs(result.model, case.example_inputs)] == want


@pytest.mark.parametrize("name", NAMES)
def test_plan_roundtrip_and_replay(name: str) -> None:
    case = ZOO[name]()
    result = prunekit.prune(case.model, case.example_inputs, ratio=0.4)
    text = json.dumps(result.plan.to_dict())
    plan = prunekit.PruningPlan.from_dict(json.loads(text))
    assert plan == result.plan
    fresh = ZOO[name]().model
    replayed = plan.apply(fresh, case.example_inputs)
    replayed.load_state_dict(result.model.state_dict())
    for a, b in zip(
        _outputs(replayed, case.example_inputs), _outputs(result.model, case.example_inputs)
    ):
        torch.testing.assert_close(a, b)


def _with_batch(inputs: Any, n: int) -> Any:
    if isinstance(inputs, Tensor):
        reps = [n] + [1] * (inputs.dim() - 1)
        return inputs[:1].repeat(*reps)
    if isinstance(inputs, dict):
        return {k: _with_batch(v, n) for k, v in inputs.items()}
    return tuple(_with_batch(v, n) for v in inputs)


@pytest.mark.parametrize("name", NAMES)
def test_pruned_model_runs_at_other_batch_sizes_and_traces(name: str) -> None:
    case = ZOO[name]()
    pruned = prunekit.prune(case.model, case.example_inputs, ratio=0.5).model.eval()
    for n in (1, 5):
        inputs = _with_batch(case.example_inputs, n)
        outs = _outputs(pruned, inputs)
        assert all(o.shape[0] == n for o in outs if o.dim() > 0)
    if isinstance(case.example_inputs, dict):
        return  # jit.trace takes positional inputs only
    inputs = case.example_inputs
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    traced = torch.jit.trace(pruned, args, strict=False, check_trace=False)
    for a, b in zip(_outputs(traced, inputs), _outputs(pruned, inputs)):
        torch.testing.assert_close(a, b)


def test_input_model_is_not_modified() -> None:
    case = ZOO["resnet_basic"]()
    before = copy.deepcopy(case.model.state_dict())
    prunekit.prune(case.model, case.example_inputs, ratio=0.5)
    after = case.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_heads_are_pruned_and_attributes_follow() -> None:
    case = ZOO["transformer_handwritten"]()
    graph = prunekit.analyze(case.model, case.example_inputs)
    heads = [g for g in graph.groups if g.num_units == 4]
    assert heads and all(g.exact for g in heads)
    result = prunekit.prune(case.model, case.example_inputs, ratio=0.5)
    attn = [m for m in result.model.modules() if hasattr(m, "num_heads")]
    assert attn and all(m.num_heads == 2 for m in attn)


def test_multihead_attention_heads_are_pruned() -> None:
    case = ZOO["transformer_mha"]()
    result = prunekit.prune(case.model, case.example_inputs, ratio=0.5)
    mhas = [m for m in result.model.modules() if isinstance(m, nn.MultiheadAttention)]
    assert mhas and all(m.num_heads == 2 for m in mhas)
    assert all(isinstance(m, prunekit.surgery.PrunedMultiheadAttention) for m in mhas)


def test_tied_weights_stay_tied() -> None:
    case = ZOO["tied_embedding"]()
    pruned = prunekit.prune(case.model, case.example_inputs, ratio=0.5).model
    tied = [(n, p) for n, p in pruned.named_parameters(remove_duplicate=False) if p.dim() == 2]
    ids = {}
    for n, p in tied:
        ids.setdefault(id(p), []).append(n)
    assert any(len(v) == 2 for v in ids.values()), "embedding and head must share one weight"


def test_depthwise_groups_follow_channels() -> None:
    case = ZOO["mobilenetv2"]()
    pruned = prunekit.prune(case.model, case.example_inputs, ratio=0.5).model
    dw = [m for m in pruned.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert dw and all(m.groups == m.in_channels == m.out_channels for m in dw)


def test_grouped_conv_keeps_groups() -> None:
    case = ZOO["resnext"]()
    before = [m.groups for m in case.model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    pruned = prunekit.prune(case.model, case.example_inputs, ratio=0.5).model
    convs = [m for m in pruned.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert [m.groups for m in convs] == before
    assert all(m.in_channels % m.groups == 0 and m.out_channels % m.groups == 0 for m in convs)


def test_rnn_hidden_size_follows() -> None:
    for name in ("lstm", "gru"):
        case = ZOO[name]()
        pruned = prunekit.prune(case.model, case.example_inputs, ratio=0.5).model
        rnns = [m for m in pruned.modules() if isinstance(m, nn.RNNBase)]
        assert rnns and all(m.hidden_size == m.weight_hh_l0.shape[1] for m in rnns)
