"""PruningPlan: JSON round trips, replay on a fresh instance, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import prunekit
from prunekit import PlanError, PruningPlan
from prunekit.plan import PLAN_FORMAT


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 24, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(24)
        self.fc = nn.Linear(24, 32)
        self.out = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        h = torch.relu(self.bn2(self.conv2(h)))
        return self.out(torch.relu(self.fc(h.mean((2, 3)))))


def make_net(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    return Net().eval()


X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def result() -> prunekit.PruneResult:
    return prunekit.prune(make_net(), X, ratio=0.4)


def test_plan_contents(result: prunekit.PruneResult) -> None:
    plan = result.plan
    assert set(plan.group_sizes) == {"conv1.weight:0", "conv2.weight:0", "fc.weight:0"}
    assert plan.group_sizes == {"conv1.weight:0": 16, "conv2.weight:0": 24, "fc.weight:0": 32}
    assert {k: len(v) for k, v in plan.removed.items()} == {
        "conv1.weight:0": 6,
        "conv2.weight:0": 9,
        "fc.weight:0": 12,
    }
    assert plan.num_removed == 27
    for units in plan.removed.values():
        assert units == sorted(set(units))
    assert plan.meta == {"ratio": 0.4, "scope": "local", "round_to": 1, "importance": "l2"}


def test_to_dict_is_json_serialisable(result: prunekit.PruneResult) -> None:
    d = result.plan.to_dict()
    text = json.dumps(d)
    back = json.loads(text)
    assert back == d
    assert back["format"] == PLAN_FORMAT
    assert PruningPlan.from_dict(back) == result.plan


def test_from_dict_equals_original(result: prunekit.PruneResult) -> None:
    plan = PruningPlan.from_dict(result.plan.to_dict())
    assert plan == result.plan
    assert plan is not result.plan
    assert plan.removed == result.plan.removed
    assert plan.group_sizes == result.plan.group_sizes


def test_to_dict_does_not_alias_the_plan(result: prunekit.PruneResult) -> None:
    d = result.plan.to_dict()
    d["removed"]["conv1.weight:0"].append(99)
    assert 99 not in result.plan.removed["conv1.weight:0"]


def test_json_file_round_trip(result: prunekit.PruneResult, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    text = result.plan.to_json(path)
    assert path.read_text() == text
    assert PruningPlan.from_json(path) == result.plan
    assert PruningPlan.from_json(str(path)) == result.plan
    assert PruningPlan.from_json(text) == result.plan


def test_apply_to_fresh_instance_reproduces_shapes_and_weights(
    result: prunekit.PruneResult,
) -> None:
    fresh = result.plan.apply(make_net(seed=123), X)
    pruned_state = result.model.state_dict()
    fresh_state = fresh.state_dict()
    assert list(fresh_state) == list(pruned_state)
    for k, v in pruned_state.items():
        assert fresh_state[k].shape == v.shape, k
    fresh.load_state_dict(pruned_state)
    fresh.eval()
    result.model.eval()
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), result.model(x), rtol=0, atol=0)
    assert fresh.conv1.out_channels == result.model.conv1.out_channels == 10
    assert fresh.fc.in_features == result.model.fc.in_features == 15


def test_apply_on_same_weights_gives_same_model(result: prunekit.PruneResult) -> None:
    # replaying on the same initial weights selects the very same slices
    fresh = PruningPlan.from_json(result.plan.to_json()).apply(make_net(), X)
    for (k, a), (_, b) in zip(fresh.state_dict().items(), result.model.state_dict().items()):
        assert torch.equal(a, b), k


def test_apply_does_not_modify_input_unless_inplace(result: prunekit.PruneResult) -> None:
    net = make_net()
    out = result.plan.apply(net, X)
    assert out is not net
    assert net.conv1.out_channels == 16
    out2 = result.plan.apply(net, X, inplace=True)
    assert out2 is net
    assert net.conv1.out_channels == 10


def test_apply_to_other_architecture_names_the_group(result: prunekit.PruneResult) -> None:
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(PlanError, match="conv1.weight:0") as info:
        result.plan.apply(other, torch.randn(2, 4))
    assert "another architecture" in str(info.value)
    assert "0.weight:0" in str(info.value)  # lists the valid keys


def test_apply_to_already_pruned_model_raises(result: prunekit.PruneResult) -> None:
    with pytest.raises(PlanError, match="unpruned"):
        result.plan.apply(result.model, X)


def test_apply_with_out_of_range_unit_raises() -> None:
    plan = PruningPlan({"conv1.weight:0": [3, 16]}, {"conv1.weight:0": 16})
    with pytest.raises(PlanError, match="conv1.weight:0"):
        plan.apply(make_net(), X)
    plan = PruningPlan({"conv1.weight:0": [-1]}, {})
    with pytest.raises(PlanError, match="conv1.weight:0"):
        plan.apply(make_net(), X)


def test_apply_with_wrong_group_size_raises() -> None:
    plan = PruningPlan({"conv1.weight:0": [0]}, {"conv1.weight:0": 32})
    with pytest.raises(PlanError, match="32"):
        plan.apply(make_net(), X)


def test_empty_plan_is_identity() -> None:
    net = make_net()
    fresh = PruningPlan({}, {}).apply(net, X)
    with torch.no_grad():
        torch.testing.assert_close(fresh(X), net(X), rtol=0, atol=0)


@pytest.mark.parametrize(
    "bad",
    [[], "plan", {}, {"group_sizes": {}}, {"removed": {}, "format": 2}],
    ids=["list", "str", "empty", "no-removed", "format-2"],
)
def test_corrupt_dict_raises_plan_error(bad: object) -> None:
    with pytest.raises(PlanError):
        PruningPlan.from_dict(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        {"removed": {"conv1.weight:0": ["a"]}},
        {"removed": [1, 2]},
        {"removed": {"conv1.weight:0": 5}},
        {"removed": {"conv1.weight:0": None}},
        {"removed": {}, "group_sizes": {"conv1.weight:0": "x"}},
        {"removed": {}, "meta": 5},
    ],
    ids=["str-unit", "removed-list", "int-units", "none-units", "str-size", "int-meta"],
)
def test_malformed_entries_raise_plan_error(bad: dict[str, object]) -> None:
    with pytest.raises(PlanError):
        PruningPlan.from_dict(bad)


def test_from_json_with_broken_text_raises_plan_error() -> None:
    with pytest.raises(PlanError):
        PruningPlan.from_json('{"removed": {"conv1.weight:0": [1, 2}')


def test_plan_removing_all_units_of_a_group_raises() -> None:
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    plan = PruningPlan({"0.weight:0": list(range(8))}, {"0.weight:0": 8})
    with pytest.raises(PlanError, match="0.weight:0"):
        plan.apply(net, torch.randn(2, 4))
