"""Magnitude (L1/L2 with mean/sum/max reduction) and random importance, checked by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ConfigError, RegistryError
from prunekit.importance import (
    Magnitude,
    RandomImportance,
    available_importances,
    get_importance,
    register_importance,
)
from prunekit.importance import registry as importance_registry

# --------------------------------------------------------------------------- tiny MLP
#
# fc1 = Linear(3, 2), fc2 = Linear(2, 1); the hidden group has 2 units and members
# fc1.weight:0, fc1.bias:0, fc2.weight:1.
#
#   fc1.weight = [[1, -2,  2],      unit 0 row: L1 = 5, L2 = 3
#                 [0,  3, -4]]      unit 1 row: L1 = 7, L2 = 5
#   fc1.bias   = [2, -1]            unit 0: 2 ;  unit 1: 1
#   fc2.weight = [[-3, 0.5]]        unit 0: 3 ;  unit 1: 0.5
#
# L1 per member: u0 = (5, 2, 3)  -> sum 10, mean 10/3, max 5
#                u1 = (7, 1, .5) -> sum 8.5, mean 8.5/3, max 7
# L2 per member: u0 = (3, 2, 3)  -> sum 8, mean 8/3, max 3
#                u1 = (5, 1, .5) -> sum 6.5, mean 6.5/3, max 5


class TinyMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 2)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(2, 1)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.tensor([[1.0, -2.0, 2.0], [0.0, 3.0, -4.0]]))
            self.fc1.bias.copy_(torch.tensor([2.0, -1.0]))
            self.fc2.weight.copy_(torch.tensor([[-3.0, 0.5]]))
            self.fc2.bias.copy_(torch.tensor([0.1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


@pytest.fixture(scope="module")
def mlp_graph() -> prunekit.DependencyGraph:
    return prunekit.analyze(TinyMLP(), torch.randn(2, 3))


def test_tiny_mlp_has_the_expected_hidden_group(mlp_graph: prunekit.DependencyGraph) -> None:
    assert len(mlp_graph.groups) == 1
    g = mlp_graph.groups[0]
    assert g.num_units == 2
    assert [(m.name, m.dim) for m in g.members] == [
        ("fc1.weight", 0),
        ("fc1.bias", 0),
        ("fc2.weight", 1),
    ]


@pytest.mark.parametrize(
    ("p", "reduction", "expected"),
    [
        (1, "sum", [10.0, 8.5]),
        (1, "mean", [10.0 / 3, 8.5 / 3]),
        (1, "max", [5.0, 7.0]),
        (2, "sum", [8.0, 6.5]),
        (2, "mean", [8.0 / 3, 6.5 / 3]),
        (2, "max", [3.0, 5.0]),
    ],
)
def test_magnitude_mlp_by_hand(
    mlp_graph: prunekit.DependencyGraph, p: int, reduction: str, expected: list[float]
) -> None:
    scores = Magnitude(p=p, reduction=reduction)(mlp_graph.groups[0], mlp_graph.tensors)
    assert scores.shape == (2,)
    torch.testing.assert_close(scores, torch.tensor(expected), rtol=1e-6, atol=1e-6)


def test_magnitude_default_is_l2_mean(mlp_graph: prunekit.DependencyGraph) -> None:
    scores = Magnitude()(mlp_graph.groups[0], mlp_graph.tensors)
    torch.testing.assert_close(scores, torch.tensor([8.0 / 3, 6.5 / 3]))


def test_registered_l1_l2_are_mean_reduced_magnitudes(
    mlp_graph: prunekit.DependencyGraph,
) -> None:
    g = mlp_graph.groups[0]
    torch.testing.assert_close(
        get_importance("l1")(g, mlp_graph.tensors), torch.tensor([10.0 / 3, 8.5 / 3])
    )
    torch.testing.assert_close(
        get_importance("l2")(g, mlp_graph.tensors), torch.tensor([8.0 / 3, 6.5 / 3])
    )


def test_unknown_reduction_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="median"):
        Magnitude(p=2, reduction="median")


# --------------------------------------------------------------------------- conv -> BN -> conv
#
# conv1 = Conv2d(1, 2, 2, bias=False), bn = BatchNorm2d(2), conv2 = Conv2d(2, 1, 1, bias=False)
#
#   conv1.weight unit 0 = [[1, 1], [1, 1]]   L1 = 4, L2 = 2
#   conv1.weight unit 1 = [[0, 3], [0, -4]]  L1 = 7, L2 = 5
#   bn.weight = [0.5, -2], bn.bias = [1.5, 0]
#   conv2.weight[:, :, 0, 0] = [[2, -1]]
#   running_mean = 100, running_var = 1000 (buffers: members, but never scored)
#
# L2 per member: u0 = (2, .5, 1.5, 2) -> sum 6, mean 1.5, max 2
#                u1 = (5, 2, 0, 1)    -> sum 8, mean 2,   max 5
# L1 per member: u0 = (4, .5, 1.5, 2) -> sum 8, mean 2,   max 4
#                u1 = (7, 2, 0, 1)    -> sum 10, mean 2.5, max 7


class ConvBNConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 2, bias=False)
        self.bn = nn.BatchNorm2d(2)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(2, 1, 1, bias=False)
        with torch.no_grad():
            self.conv1.weight.copy_(
                torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]], [[[0.0, 3.0], [0.0, -4.0]]]])
            )
            self.bn.weight.copy_(torch.tensor([0.5, -2.0]))
            self.bn.bias.copy_(torch.tensor([1.5, 0.0]))
            self.bn.running_mean.fill_(100.0)
            self.bn.running_var.fill_(1000.0)
            self.conv2.weight.copy_(torch.tensor([2.0, -1.0]).view(1, 2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act(self.bn(self.conv1(x))))


@pytest.fixture(scope="module")
def conv_graph() -> prunekit.DependencyGraph:
    return prunekit.analyze(ConvBNConv().eval(), torch.randn(2, 1, 4, 4))


def test_conv_bn_group_members(conv_graph: prunekit.DependencyGraph) -> None:
    assert len(conv_graph.groups) == 1
    g = conv_graph.groups[0]
    assert g.num_units == 2
    params = {(m.name, m.dim) for m in g.members if m.is_param}
    buffers = {(m.name, m.dim) for m in g.members if not m.is_param}
    assert params == {("conv1.weight", 0), ("bn.weight", 0), ("bn.bias", 0), ("conv2.weight", 1)}
    assert buffers == {("bn.running_mean", 0), ("bn.running_var", 0)}


@pytest.mark.parametrize(
    ("p", "reduction", "expected"),
    [
        (2, "sum", [6.0, 8.0]),
        (2, "mean", [1.5, 2.0]),
        (2, "max", [2.0, 5.0]),
        (1, "sum", [8.0, 10.0]),
        (1, "mean", [2.0, 2.5]),
        (1, "max", [4.0, 7.0]),
    ],
)
def test_magnitude_conv_bn_by_hand_ignores_running_stats(
    conv_graph: prunekit.DependencyGraph, p: int, reduction: str, expected: list[float]
) -> None:
    scores = Magnitude(p=p, reduction=reduction)(conv_graph.groups[0], conv_graph.tensors)
    torch.testing.assert_close(scores, torch.tensor(expected), rtol=1e-6, atol=1e-6)


def test_magnitude_ranks_units_as_expected_in_prune() -> None:
    # L1 sum on the MLP: u0 = 10 > u1 = 8.5 -> cutting one unit removes unit 1 ...
    res = prunekit.prune(TinyMLP(), torch.randn(2, 3), ratio=0.5, importance=Magnitude(1, "sum"))
    assert res.plan.removed == {"fc1.weight:0": [1]}
    torch.testing.assert_close(res.model.fc1.weight, torch.tensor([[1.0, -2.0, 2.0]]))
    # ... while L2 max (u0 = 3 < u1 = 5) removes unit 0.
    res = prunekit.prune(TinyMLP(), torch.randn(2, 3), ratio=0.5, importance=Magnitude(2, "max"))
    assert res.plan.removed == {"fc1.weight:0": [0]}
    torch.testing.assert_close(res.model.fc2.weight, torch.tensor([[0.5]]))


# --------------------------------------------------------------------------- random


def test_random_importance_shape_range_and_determinism(
    mlp_graph: prunekit.DependencyGraph, conv_graph: prunekit.DependencyGraph
) -> None:
    g = conv_graph.groups[0]
    a = RandomImportance(seed=3)(g, conv_graph.tensors)
    b = RandomImportance(seed=3)(g, conv_graph.tensors)
    assert a.shape == (g.num_units,)
    assert ((a >= 0) & (a < 1)).all()
    assert torch.equal(a, b)
    # it does not look at the weights: same group shape, same id -> same scores
    m = mlp_graph.groups[0]
    assert m.id == g.id and m.num_units == g.num_units
    assert torch.equal(RandomImportance(seed=3)(m, mlp_graph.tensors), a)


def test_random_importance_differs_across_seeds() -> None:
    model = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))
    graph = prunekit.analyze(model, torch.randn(2, 4))
    g = graph.groups[0]
    s0 = RandomImportance(seed=0)(g, graph.tensors)
    s1 = RandomImportance(seed=1)(g, graph.tensors)
    assert s0.shape == (64,)
    assert not torch.equal(s0, s1)
    assert len(set(s0.tolist())) == 64  # no ties among 64 uniform draws
    assert isinstance(get_importance("random"), RandomImportance)


# --------------------------------------------------------------------------- registry


def test_unknown_importance_lists_valid_names() -> None:
    with pytest.raises(RegistryError) as info:
        get_importance("nope")
    msg = str(info.value)
    assert "'nope'" in msg
    for name in ("l1", "l2", "random"):
        assert name in msg
    assert isinstance(info.value, prunekit.PrunekitError)


def test_available_importances_contains_builtins() -> None:
    names = available_importances()
    assert {"l1", "l2", "random"} <= set(names)
    assert names == sorted(names)


def test_get_importance_is_case_insensitive_and_passes_objects_through() -> None:
    assert isinstance(get_importance("L1"), Magnitude)
    assert get_importance("L1").p == 1
    crit = Magnitude(p=1, reduction="max")
    assert get_importance(crit) is crit


def test_get_importance_rejects_non_callables() -> None:
    with pytest.raises(RegistryError, match="int"):
        get_importance(42)  # type: ignore[arg-type]


def test_duplicate_registration_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importance_registry, "_REGISTRY", dict(importance_registry._REGISTRY))
    with pytest.raises(RegistryError, match="already registered"):
        register_importance("l2", lambda: Magnitude(p=2))
    # a new name registers, then clashes on the second attempt
    register_importance("helper_l1_max", lambda: Magnitude(p=1, reduction="max"))
    assert get_importance("helper_l1_max") == Magnitude(p=1, reduction="max")
    with pytest.raises(RegistryError, match="helper_l1_max"):
        register_importance("helper_l1_max", lambda: Magnitude(p=1))
    register_importance("helper_l1_max", lambda: Magnitude(p=2), override=True)
    assert get_importance("helper_l1_max") == Magnitude(p=2)


def test_registry_is_restored_after_monkeypatch() -> None:
    assert "helper_l1_max" not in available_importances()
