"""The run report gets the sensitivity curves when the recipe asks for them, and a search run
gets its trade-off curve and the winning criterion's score distributions."""

from __future__ import annotations

import json
from pathlib import Path

from prunekit.pipeline import run
from prunekit.recipe import parse_recipe

_BASE = (
    "model: {name: mlp, kwargs: {hidden: [16, 16]}}\n"
    "data: {name: iris}\n"
    "train: {epochs: 3, cache: false}\n"
    "evaluation: {latency: false, sensitivity: true, sensitivity_ratios: [0.25, 0.5]}\n"
)


def test_prune_run_records_sensitivity(tmp_path: Path) -> None:
    recipe = parse_recipe(_BASE + "prune: {ratio: 0.5}\n")
    res = run(recipe, out_dir=tmp_path / "run", progress=False)
    record = json.loads((res.run_dir / "record.json").read_text())
    assert record["sensitivity"] and all(len(v) == 2 for v in record["sensitivity"].values())
    assert (res.run_dir / "sensitivity.png").exists()
    assert "sensitivity" in res.timings


def test_search_run_has_tradeoff_and_scores(tmp_path: Path) -> None:
    recipe = parse_recipe(_BASE + "search: {budget: {macs: 0.5}, steps: 3}\n")
    res = run(recipe, mode="search", out_dir=tmp_path / "run", progress=False)
    record = json.loads((res.run_dir / "record.json").read_text())
    assert record["tradeoff"] and record["importance"]
    assert (res.run_dir / "tradeoff_macs.png").exists()
    assert (res.run_dir / "importance.png").exists()
