"""Run the docstring examples of the weight-level pruning modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "prunekit.sparsity",
    "prunekit.sparsity.export",
    "prunekit.sparsity.masks",
    "prunekit.sparsity.parametrize",
    "prunekit.sparsity.prune",
    "prunekit.sparsity.scores",
    "prunekit.sparsity.summary",
    "prunekit.sparsity.targets",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
