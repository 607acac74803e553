"""NoiseInjection: decay curves by hand, noise level relative to each tensor's std."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError
from prunekit.recovery import NoiseInjection


def test_decay_curves_by_hand() -> None:
    lin, cos, exp = (NoiseInjection(decay=d) for d in ("linear", "cosine", "exponential"))
    assert [lin.factor(t) for t in (0, 0.25, 1)] == [1.0, 0.75, 0.0]
    assert cos.factor(0.25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    floor = math.exp(-5)
    assert exp.factor(0.5) == pytest.approx((math.exp(-2.5) - floor) / (1 - floor))
    assert exp.factor(0.0) == pytest.approx(1.0) and exp.factor(1.0) == pytest.approx(0.0)
    assert lin.factor(1.7) == 0.0  # clamped


def test_relative_noise_scales_with_each_tensors_std() -> None:
    torch.manual_seed(0)
    small, large = (
        nn.Parameter(torch.randn(300, 300) * 0.1),
        nn.Parameter(torch.randn(300, 300) * 10),
    )
    holder = nn.ParameterList([small, large])
    before = [p.detach().clone() for p in holder]
    NoiseInjection(scale=0.05, decay="linear").apply(holder, 0.5, torch.Generator().manual_seed(0))
    for p, b in zip(holder, before):
        added = (p.detach() - b).std()
        assert float(added) == pytest.approx(0.05 * 0.5 * float(b.std()), rel=0.03)


def test_absolute_noise_and_determinism_and_frozen_params() -> None:
    net = nn.Linear(400, 200)
    net.bias.requires_grad_(False)
    bias = net.bias.detach().clone()
    a, b = nn.Linear(400, 200), nn.Linear(400, 200)
    b.load_state_dict(a.state_dict())
    noise = NoiseInjection(scale=0.2, relative=False)
    for m in (a, b):
        noise.apply(m, 0.0, torch.Generator().manual_seed(3))
    assert torch.equal(a.weight, b.weight)  # same generator seed, same noise
    before = net.weight.detach().clone()
    noise.apply(net, 0.0, torch.Generator().manual_seed(1))
    assert float((net.weight.detach() - before).std()) == pytest.approx(0.2, rel=0.03)
    assert torch.equal(net.bias, bias)
    noise.apply(net, 1.0, torch.Generator())  # end of training: no noise at all
    assert float((net.weight.detach() - before).std()) == pytest.approx(0.2, rel=0.03)


def test_invalid_settings_name_the_value() -> None:
    with pytest.raises(ConfigError, match="'sudden'"):
        NoiseInjection(decay="sudden")
    with pytest.raises(ConfigError, match="-1"):
        NoiseInjection(scale=-1)
