"""Weight-level pruning from prunekit.prune(): granularity, criteria, schedules, errors."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import prunekit
from prunekit.errors import ConfigError
from prunekit.importance import RandomImportance, Taylor
from prunekit.sparsity import WeightPruneResult, has_masks, prune_weights

X = torch.randn(4, 8)


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))


def test_unstructured_matches_prune_weights_and_keeps_masks() -> None:
    net = mlp()
    res = prunekit.prune(net, X, ratio=0.5, granularity="unstructured")
    assert isinstance(res, WeightPruneResult) and has_masks(res.model) and not has_masks(net)
    want = prune_weights(net, 0.5)
    for a, b in zip(res.model, want):
        if isinstance(a, nn.Linear):
            assert torch.equal(a.weight, b.weight)
            # magnitude: exactly half the weights, the smallest |w|, are zero
            w = net[0].weight if a is res.model[0] else net[2].weight
            kept = w.abs()[a.weight != 0]
            assert int((a.weight == 0).sum()) == w.numel() // 2
            assert kept.min() >= w.abs()[a.weight == 0].max()
    layers = res.summary().layers
    assert [(la.name, la.zeros, la.masked) for la in layers] == [("0", 64, True), ("2", 64, True)]
    plain = res.make_permanent()
    assert type(plain[0]) is nn.Linear and not has_masks(plain)
    path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    rep = res.save(path)
    # tiny layers: the file header outweighs the saving, but the weights are stored packed
    assert rep.encodings == {"0.bias": "dense", "0.weight": "bitmask", "2.bias": "dense",
                             "2.weight": "bitmask"}  # fmt: skip


def test_global_scope_and_nm_patterns() -> None:
    net = mlp()
    g = prunekit.prune(net, X, ratio=0.5, granularity="unstructured", scope="global")
    s = g.summary()
    assert sum(la.zeros for la in s.layers) == (8 * 16 + 16 * 8) // 2
    nm = prunekit.prune(net, X, granularity="4:8").make_permanent()
    assert bool((nm[0].weight.reshape(16, 1, 8) != 0).sum(-1).le(4).all())
    assert int((nm[0].weight == 0).sum()) == 64
    res = prunekit.prune(net, X, granularity="2:4", ignore=["2"])
    assert [la.name for la in res.summary().layers if la.masked] == ["0"]
    assert res.sparsities == [0.5]


def test_iterative_weight_schedule_tightens_masks_between_callbacks() -> None:
    seen: list[tuple[int, int]] = []

    def callback(model: nn.Module, step: int) -> None:
        seen.append((step, int((model[0].weight == 0).sum())))

    res = prunekit.prune(
        mlp(), X, ratio=0.75, granularity="unstructured", schedule="iterative", steps=3,
        ramp="linear", callback=callback,
    )  # fmt: skip
    assert res.sparsities == pytest.approx([0.25, 0.5, 0.75])
    assert seen == [(0, 32), (1, 64)]
    assert int((res.model[0].weight == 0).sum()) == 96


def test_data_driven_and_seeded_random_criteria() -> None:
    data = [(torch.randn(16, 8), torch.randint(0, 8, (16,)))]
    crit = Taylor(data=data, loss_fn=lambda o, b: F.cross_entropy(o, b[1]))
    net = mlp()
    res = prunekit.prune(net, X, ratio=0.5, granularity="unstructured", importance=crit)
    direct = prune_weights(net, 0.5, importance="taylor", data=data,
                           loss_fn=lambda o, b: F.cross_entropy(o, b[1]))  # fmt: skip
    assert torch.equal(res.model[0].weight, direct[0].weight)
    r0 = prunekit.prune(
        net, X, ratio=0.5, granularity="unstructured", importance=RandomImportance(0)
    )
    r1 = prunekit.prune(
        net, X, ratio=0.5, granularity="unstructured", importance=RandomImportance(1)
    )
    assert not torch.equal(r0.model[0].weight == 0, r1.model[0].weight == 0)


def test_weight_level_errors_name_the_bad_value() -> None:
    net = mlp()
    with pytest.raises(ConfigError, match="granularity='1:2:3'"):
        prunekit.prune(net, X, ratio=0.5, granularity="1:2:3")
    with pytest.raises(ConfigError, match="target_macs"):
        prunekit.prune(net, X, granularity="unstructured", target_macs=0.5)
    with pytest.raises(ConfigError, match="round_to"):
        prunekit.prune(net, X, ratio=0.5, granularity="unstructured", round_to=8)
    with pytest.raises(ConfigError, match="needs ratio"):
        prunekit.prune(net, X, granularity="unstructured")
    with pytest.raises(ConfigError, match="fixes the sparsity"):
        prunekit.prune(net, X, ratio=0.5, granularity="2:4")
    with pytest.raises(ConfigError, match="Taylor\\(data=loader, loss_fn=fn\\)"):
        prunekit.prune(net, X, ratio=0.5, granularity="unstructured", importance="taylor")
    with pytest.raises(ConfigError, match="hierarchical"):
        prunekit.prune(net, X, ratio=0.5, granularity="unstructured", schedule="hierarchical")
    with pytest.raises(ConfigError, match="no weight-level form"):
        prunekit.prune(net, X, ratio=0.5, granularity="unstructured", importance=object())  # type: ignore[call-overload]
