"""The allocation registry: names -> allocators, and the one the pruner picks for a spec."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

import prunekit
from prunekit.allocation import (
    AllocationSpec,
    allocator_for,
    available_allocators,
    get_allocator,
    register_allocator,
)
from prunekit.allocation.registry import _REGISTRY
from prunekit.errors import ConfigError, RegistryError


@pytest.fixture
def scratch() -> Iterator[str]:
    yield "first_unit"
    _REGISTRY.remove("first_unit")


def test_built_in_allocators() -> None:
    assert {"ratio", "rules"} <= set(available_allocators())


def test_unknown_allocator_lists_the_valid_names() -> None:
    with pytest.raises(
        RegistryError, match="unknown allocator 'median'; valid names: ratio, rules"
    ):
        get_allocator("median")


def test_duplicate_registration_raises(scratch: str) -> None:
    def first(groups: Any, scores: Any, spec: Any, modules: Any) -> dict[int, list[int]]:
        return {g.id: [0] for g in groups}

    register_allocator(scratch, first)
    with pytest.raises(RegistryError, match="already registered"):
        register_allocator(scratch, first)
    assert register_allocator(scratch, first, override=True) == scratch
    with pytest.raises(ConfigError, match="must be callable"):
        register_allocator("not_callable", 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        (AllocationSpec(0.5), "ratio"),
        (AllocationSpec(0.5, scope="global", round_to=8), "ratio"),
        (AllocationSpec(0.5, module_ratios={"0": 0.2}), "rules"),
        (AllocationSpec(group_ratios={"0.weight:0": 0.2}), "rules"),
        (AllocationSpec(threshold=0.1), "rules"),
        (AllocationSpec(0.5, max_ratio=0.4), "rules"),
        (AllocationSpec(0.5, allocator="mine"), "mine"),
    ],
)
def test_the_spec_picks_its_allocator(spec: AllocationSpec, name: str) -> None:
    assert allocator_for(spec) == name


def test_bad_allocator_field() -> None:
    with pytest.raises(ConfigError, match="allocator=3"):
        AllocationSpec(0.5, allocator=3)  # type: ignore[arg-type]


def test_pruner_uses_a_registered_allocator(scratch: str) -> None:
    def first(groups: Any, scores: Any, spec: Any, modules: Any) -> dict[int, list[int]]:
        return {g.id: [0] for g in groups}

    register_allocator(scratch, first)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    pruner = prunekit.Pruner(net, torch.randn(1, 4), ratio=0.5)
    pruner.spec = dataclasses.replace(pruner.spec, allocator=scratch)
    res = pruner.step()
    assert res.plan.removed == {"0.weight:0": [0]}
    assert res.plan.meta["allocator"] == scratch
    pruner.spec = dataclasses.replace(pruner.spec, allocator="nope")
    with pytest.raises(RegistryError, match="unknown allocator 'nope'"):
        pruner.step()
