"""Sparsity regularisers: hand-computed penalties, and group lasso drives whole units to zero."""

from __future__ import annotations

import pytest
import torch
from recovery_support import digits_batches
from torch import nn

import prunekit
from prunekit.errors import ConfigError
from prunekit.recovery import BNScaleL1, GroupLasso, accuracy, finetune


def test_bn_scale_l1_value_and_gradient() -> None:
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.LayerNorm(3))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([0.5, -2.0, 1.0]))
    penalty = BNScaleL1(0.1)(net)
    assert penalty.item() == pytest.approx(0.1 * 3.5)  # LayerNorm is not penalised
    penalty.backward()
    assert net[1].weight.grad.tolist() == pytest.approx([0.1, -0.1, 0.1])
    assert BNScaleL1(1.0)(nn.Linear(2, 2)).item() == 0.0
    with pytest.raises(ConfigError, match="strength=-1"):
        BNScaleL1(-1)


def test_group_lasso_by_hand_on_linear_chain() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    lasso = GroupLasso(net, torch.randn(1, 3), strength=0.5)
    assert lasso.num_units_ == 4
    w0, b0, w2 = net[0].weight, net[0].bias, net[2].weight
    per_unit = (w0.pow(2).sum(1) + b0.pow(2) + w2.pow(2).sum(0)).sqrt()
    assert lasso(net).item() == pytest.approx(0.5 * per_unit.sum().item(), rel=1e-5)
    lasso(net).backward()
    assert net[2].weight.grad is not None and net[0].bias.grad is not None


def test_group_lasso_covers_conv_batchnorm_members_and_takes_a_graph() -> None:
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 1))
    graph = prunekit.analyze(net, torch.randn(1, 1, 5, 5), verify=False)
    lasso = GroupLasso(graph, strength=1.0)
    c0, bn, c3 = net[0], net[1], net[3]
    sq = (c0.weight.pow(2).flatten(1).sum(1) + c0.bias.pow(2) + bn.weight.pow(2) + bn.bias.pow(2)
          + c3.weight.pow(2).sum((0, 2, 3)))  # fmt: skip
    assert lasso(net).item() == pytest.approx(sq.sqrt().sum().item(), rel=1e-5)
    with pytest.raises(ConfigError, match="example_inputs"):
        GroupLasso(net)
    smaller = prunekit.prune(net, torch.randn(1, 1, 5, 5), ratio=0.5).model
    with pytest.raises(ConfigError, match="'0.weight' with 3 entries"):
        lasso(smaller)


def hidden_norms(net: nn.Module) -> torch.Tensor:
    w0, b0, w2 = net[0].weight, net[0].bias, net[2].weight
    return (w0.pow(2).sum(1) + b0.pow(2) + w2.pow(2).sum(0)).sqrt().detach()


def test_group_lasso_training_drives_hidden_units_to_zero() -> None:
    data = [(x.flatten(1), y) for x, y in digits_batches(64)]
    val = [(x.flatten(1), y) for x, y in digits_batches(512, split="val")]
    fractions, acc = {}, {}
    for name, strength in (("plain", 0.0), ("lasso", 1e-2)):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        reg = GroupLasso(net, torch.zeros(1, 64), strength=strength) if strength else None
        finetune(net, data, epochs=4, lr=0.1, lr_schedule="constant", regularizer=reg,
                 progress=False)  # fmt: skip
        norms = hidden_norms(net)
        fractions[name] = float((norms < 0.05 * norms.max()).float().mean())
        acc[name] = accuracy(net, val)
    # measured: plain 0 of 32 units below 5 % of the largest norm, lasso 7 of 32 (~0.01),
    # validation accuracy 0.922 vs 0.914
    assert fractions["plain"] == 0.0
    assert fractions["lasso"] >= 0.15, fractions
    assert acc["lasso"] > acc["plain"] - 0.05, acc
