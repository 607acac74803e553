"""Run the docstring examples of the criteria, allocation, Pruner and schedule modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "prunekit.importance.base",
    "prunekit.importance.stats",
    "prunekit.importance.calibration",
    "prunekit.importance.gradient",
    "prunekit.importance.activation",
    "prunekit.importance.datafree",
    "prunekit.importance.loss_contribution",
    "prunekit.importance.fusion",
    "prunekit.allocation.allocate",
    "prunekit.allocation.rules",
    "prunekit.allocation.candidates",
    "prunekit.allocation.sensitivity",
    "prunekit.pruner",
    "prunekit.schedule.schedules",
    "prunekit.schedule.plan",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
