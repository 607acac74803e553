"""The demo recipe is valid and wired to the CLI (the full demo is run by `make demo`)."""

from __future__ import annotations

from prunekit import demo
from prunekit.cli import app


def test_demo_recipe_is_the_advertised_job() -> None:
    recipe = demo.demo_recipe()
    assert recipe.model.name == "lenet5" and recipe.data.name == "mnist"
    assert recipe.search is not None and recipe.search.budget is not None
    assert recipe.search.budget.macs == 0.5
    assert {s.importance for s in recipe.search.strategies} == {"taylor", "l2"}
    assert recipe.evaluation.sensitivity
    assert recipe.recovery.distill is not None and recipe.recovery.finetune is not None
    assert recipe.evaluation.batch_sizes == [1, 64]


def test_demo_command_is_registered() -> None:
    names = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    assert "demo" in names and callable(demo.main)
