"""Every docstring example in the package runs (public API docs are runnable)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import prunekit

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(prunekit.__path__, "prunekit.")
    if m.name != "prunekit.demo"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_public_api_has_examples() -> None:
    for name in (
        "prunekit.analysis",
        "prunekit.pruner",
        "prunekit.api",
        "prunekit.registry",
        "prunekit.outputs",
        "prunekit.schedule.registry",
        "prunekit.sparsity.weight_level",
        "prunekit.plan",
        "prunekit.testing",
        "prunekit.search.search",
        "prunekit.evaluation.suite",
        "prunekit.export.saving",
        "prunekit.report.writer",
    ):
        finder = doctest.DocTestFinder()
        tests = finder.find(importlib.import_module(name))
        assert sum(len(t.examples) for t in tests) > 0, f"{name} has no runnable example"
