"""Depth pruning (prunekit.llm.prune_depth): block influence against a hand computation,
the removal, config / layer_idx / layer_types coherence, generate(), argument errors;
tiny random LLaMA / Qwen2 only."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import transformers
from torch import nn

from prunekit.errors import ConfigError
from prunekit.llm import block_influence, decoder_layers, prune_depth
from prunekit.surgery.llama_blocks import remove_blocks
from tests.llm.tiny import TINY_VOCAB, make_tiny_llama
from tests.untouched import assert_untouched


def _ids(n: int = 4, length: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, TINY_VOCAB, (n, length), generator=torch.Generator().manual_seed(seed))


def _identity(block: nn.Module) -> None:
    """Make ``block`` the identity on the residual stream (zero attention and FFN outputs)."""
    with torch.no_grad():
        block.self_attn.o_proj.weight.zero_()
        block.mlp.down_proj.weight.zero_()


def _model(layers: int = 4, identity: tuple[int, ...] = ()) -> nn.Module:
    model = make_tiny_llama(num_hidden_layers=layers)
    for i in identity:
        _identity(decoder_layers(model)[i])
    return model


def _hand_influence(model: nn.Module, ids: torch.Tensor) -> tuple[list[float], list[float]]:
    """1 - mean cos and mean arccos/pi of every block's (input, output), from hooks on a
    whole-model forward, token by token with explicit dot products."""
    seen: dict[int, list[torch.Tensor]] = {}
    handles = []
    for i, block in enumerate(decoder_layers(model)):
        handles.append(
            block.register_forward_pre_hook(
                lambda _, a, kw, i=i: seen.setdefault(i, []).append(
                    (a[0] if a else kw["hidden_states"]).detach()
                ),
                with_kwargs=True,
            )
        )
        handles.append(block.register_forward_hook(lambda _, a, y, i=i: seen[i].append(y)))
    with torch.no_grad():
        model(input_ids=ids, use_cache=False)
    for h in handles:
        h.remove()
    cosine, angular = [], []
    for i in range(len(seen)):
        x, y = (t.reshape(-1, t.shape[-1]).double() for t in seen[i])
        cos = [float(a @ b / (a.norm() * b.norm())) for a, b in zip(x, y)]
        cosine.append(1 - sum(cos) / len(cos))
        angular.append(sum(math.acos(max(-1.0, min(1.0, c))) for c in cos) / len(cos) / math.pi)
    return cosine, angular


def test_influence_equals_hand_computation_and_identity_block_goes_first() -> None:
    model, ids = _model(identity=(2,)), _ids()
    cosine, angular = _hand_influence(model, ids)
    assert block_influence(model, ids) == pytest.approx(cosine, abs=1e-9)
    assert block_influence(model, ids, metric="angular") == pytest.approx(angular, abs=1e-9)
    assert abs(cosine[2]) < 1e-12 and min(cosine[:2] + cosine[3:]) > 1e-3
    res = prune_depth(model, ids, blocks=1, progress=False)
    assert res.removed == [2] and res.scores == pytest.approx(cosine, abs=1e-9)
    assert res.block_params[1] == res.block_params[0] * 3 // 4


def test_cut_equals_skipping_the_blocks_and_config_follows() -> None:
    model, ids = _model(layers=5), _ids()
    res = prune_depth(model, ids, blocks=2, progress=False)
    cut = res.model
    assert cut.config.num_hidden_layers == 3 and len(decoder_layers(cut)) == 3
    assert model.config.num_hidden_layers == 5  # the input model's config is not shared
    assert [b.self_attn.layer_idx for b in decoder_layers(cut)] == [0, 1, 2]
    assert {k.split(".")[2] for k in cut.state_dict() if k.startswith("model.layers.")} == {
        "0",
        "1",
        "2",
    }
    skipped = copy.deepcopy(model)  # the removed blocks made identity: the same function
    for i in res.removed:
        _identity(decoder_layers(skipped)[i])
    with torch.no_grad():
        assert torch.allclose(cut(ids).logits, skipped(ids).logits, atol=1e-5)
    kept = [i for i in range(5) if i not in res.removed]
    for new, old in zip(decoder_layers(cut), kept):
        assert torch.equal(new.mlp.up_proj.weight, decoder_layers(model)[old].mlp.up_proj.weight)


def test_regression_layer_idx_renumbered_kv_cache() -> None:
    """After removing block 0, the blocks must use KV-cache slots 0..n-1: with the old
    ``layer_idx`` the cache is indexed past its end or two blocks share a slot, and cached
    generation differs from uncached generation."""
    model, ids = _model(layers=4), _ids(1, 6)
    cut = copy.deepcopy(model)
    remove_blocks(cut, [0, 2])
    assert [b.self_attn.layer_idx for b in decoder_layers(cut)] == [0, 1]
    with torch.no_grad():
        cached = cut.generate(ids, max_new_tokens=6, do_sample=False)
        plain = cut.generate(ids, max_new_tokens=6, do_sample=False, use_cache=False)
    assert cached.shape == (1, 12) and torch.equal(cached, plain)


def test_layer_types_follow_the_removed_blocks() -> None:
    cfg = transformers.Qwen2Config(
        vocab_size=TINY_VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, use_sliding_window=True, sliding_window=4,
        max_window_layers=2, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(cfg).eval()
    types = list(model.config.layer_types)
    assert len(set(types)) == 2  # full and sliding attention both present
    keep = remove_blocks(model, [1, 2])
    assert keep == [0, 3] and model.config.layer_types == [types[0], types[3]]
    ids = _ids(1, 8)
    with torch.no_grad():
        cached = model.generate(ids, max_new_tokens=4, do_sample=False)
        plain = model.generate(ids, max_new_tokens=4, do_sample=False, use_cache=False)
    assert torch.equal(cached, plain)


def test_input_model_untouched() -> None:
    model, ids = _model(), _ids()
    res = assert_untouched(model, prune_depth, model, ids, blocks=2, progress=False)
    assert len(decoder_layers(res.model)) == 2 and len(decoder_layers(model)) == 4
    assert_untouched(model, prune_depth, model, ids, ratio=0.25, iterative=True, progress=False)


def test_inplace_cuts_the_given_model() -> None:
    model, ids = _model(), _ids()
    res = prune_depth(model, ids, blocks=1, inplace=True, progress=False)
    assert res.model is model and len(decoder_layers(model)) == 3


def test_ratio_takes_the_fewest_blocks_and_warns_when_inexact() -> None:
    model, ids = _model(identity=(1,)), _ids()
    res = prune_depth(model, ids, ratio=0.25, progress=False)
    assert res.removed == [1] and res.fraction_removed == pytest.approx(0.25)
    with pytest.warns(UserWarning, match=r"ratio=0.3.*0\.500.*0\.250"):
        res = prune_depth(model, ids, ratio=0.3, progress=False)
    assert len(res.removed) == 2 and res.fraction_removed == pytest.approx(0.5)


def test_iterative_measures_again_after_each_removal() -> None:
    model, ids = _model(layers=5, identity=(3,)), _ids()
    res = prune_depth(model, ids, blocks=3, iterative=True, progress=False)
    assert res.removed[0] == 3 and len(res.rescored) == 3
    assert res.rescored[0] == pytest.approx(dict(enumerate(res.scores)))
    shortened = copy.deepcopy(model)
    remove_blocks(shortened, [3])
    again = block_influence(shortened, ids)
    assert res.rescored[1] == pytest.approx(dict(zip([0, 1, 2, 4], again)))
    second = min(res.rescored[1], key=lambda k: res.rescored[1][k])
    assert res.removed[1] == second and "iterative" in res.summary()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"blocks": 0}, r"blocks=0 .*\[1, 3\]"),
        ({"blocks": 4}, r"blocks=4 .*\[1, 3\]"),
        ({"blocks": 1, "ratio": 0.2}, "exactly one of blocks="),
        ({}, "exactly one of blocks="),
        ({"ratio": 1.5}, r"ratio=1.5 .*\(0, 1\)"),
        ({"blocks": 1, "metric": "euclid"}, r"metric='euclid' .*cosine"),
        ({"blocks": 1, "iterative": "yes"}, "iterative='yes' must be True or False"),
    ],
)
def test_bad_arguments_name_the_value_and_the_fix(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        prune_depth(_model(), _ids(), progress=False, **kwargs)


def test_bad_calibration_and_bad_block_indices() -> None:
    with pytest.raises(ConfigError, match=r"\(N, L\) tensor .*calibration_batch"):
        prune_depth(_model(), torch.arange(8), blocks=1, progress=False)
    with pytest.raises(ConfigError, match=r"\[7\].*\[0, 4\)"):
        remove_blocks(_model(), [7])
    with pytest.raises(ConfigError, match="at least one"):
        remove_blocks(_model(), [0, 1, 2, 3])
