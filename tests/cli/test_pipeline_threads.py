"""Threads: the latency measurement's count never leaks into training; the run's own count
is the process's unless the recipe's top-level `threads` says otherwise, and is restored."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from prunekit.pipeline import run
from prunekit.recipe import parse_recipe

latency_module = importlib.import_module("prunekit.evaluation.latency")
baseline_module = importlib.import_module("prunekit.pipeline.baseline")
recover_module = importlib.import_module("prunekit.pipeline.recover")

RECIPE = """\
model: {{name: mlp, kwargs: {{hidden: [16]}}}}
data: {{name: iris}}
train: {{epochs: 1, cache: false}}
prune: {{ratio: 0.5}}
recovery: {{finetune: {{epochs: 1}}}}
evaluation: {{batch_sizes: [1], runs: 2, {evaluation}}}
output: {{save_model: false}}
{top}
"""


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[int]]]:
    """Thread counts in force while training, fine-tuning and timing latency."""
    record: dict[str, list[int]] = {"train": [], "latency": []}
    real_train, real_recover = baseline_module.finetune, recover_module.finetune
    real_timing = latency_module._interleaved

    def train(*args: Any, **kw: Any) -> Any:
        record["train"].append(torch.get_num_threads())
        return real_train(*args, **kw)

    def recover(*args: Any, **kw: Any) -> Any:
        record["train"].append(torch.get_num_threads())
        return real_recover(*args, **kw)

    def timing(*args: Any, **kw: Any) -> Any:
        record["latency"].append(torch.get_num_threads())
        return real_timing(*args, **kw)

    monkeypatch.setattr(baseline_module, "finetune", train)
    monkeypatch.setattr(recover_module, "finetune", recover)
    monkeypatch.setattr(latency_module, "_interleaved", timing)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield record
    torch.set_num_threads(before)


def test_regression_latency_threads_do_not_change_training_threads(
    tmp_path: Path, seen: dict[str, list[int]]
) -> None:
    recipe = parse_recipe(RECIPE.format(evaluation="latency_threads: 1", top=""))
    run(recipe, out_dir=tmp_path / "run", progress=False)
    assert seen["train"] == [3, 3]  # baseline training and recovery: the process's count
    assert seen["latency"] and set(seen["latency"]) == {1}
    assert torch.get_num_threads() == 3


def test_top_level_threads_set_the_whole_run_and_are_restored(
    tmp_path: Path, seen: dict[str, list[int]]
) -> None:
    recipe = parse_recipe(RECIPE.format(evaluation="latency: true", top="threads: 2"))
    run(recipe, out_dir=tmp_path / "run", progress=False)
    assert seen["train"] == [2, 2] and set(seen["latency"]) == {2}
    assert torch.get_num_threads() == 3


def test_deprecated_evaluation_threads_means_latency_threads(
    tmp_path: Path, seen: dict[str, list[int]]
) -> None:
    with pytest.warns(FutureWarning, match="rename it to evaluation.latency_threads"):
        recipe = parse_recipe(RECIPE.format(evaluation="threads: 1", top=""))
    assert recipe.evaluation.latency_threads == 1
    run(recipe, out_dir=tmp_path / "run", progress=False)
    assert seen["train"] == [3, 3] and set(seen["latency"]) == {1}


def test_old_and_new_thread_keys_together_are_an_error() -> None:
    from prunekit.errors import RecipeError

    with pytest.raises(RecipeError, match="give latency_threads only"):
        parse_recipe(RECIPE.format(evaluation="threads: 1, latency_threads: 2", top=""))
