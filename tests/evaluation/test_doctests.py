"""Run the docstring examples of the evaluation, data, models and demo modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "prunekit.evaluation.cost",
    "prunekit.evaluation.sensitivity",
    "prunekit.data.digits",
    "prunekit.models.digits_cnn",
    "prunekit.demo",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
