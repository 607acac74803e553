"""The demo: its recipe is prunekit's best pipeline, its verdict is computed right, and a
reduced-size run (same pipeline, fewer epochs) works end to end, cold and warm alike.

The full-size demo (`make demo`) is measured in the README's Timings section.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from prunekit import demo
from prunekit.cli import app
from prunekit.demo import MAX_DROP_POINTS, MAX_MACS_RATIO, DemoOutcome, demo_outcome, demo_recipe


def test_demo_recipe_is_the_advertised_job() -> None:
    recipe = demo.demo_recipe()
    assert recipe.model.name == "lenet5" and recipe.data.name == "mnist"
    assert recipe.search is not None and recipe.search.budget is not None
    assert recipe.search.budget.macs == MAX_MACS_RATIO == 0.5
    assert {s.importance for s in recipe.search.strategies} == {"taylor", "l2"}
    assert {s.scope for s in recipe.search.strategies} == {"global", "local"}
    assert recipe.evaluation.sensitivity and recipe.evaluation.split == "test"
    assert recipe.evaluation.batch_sizes == [1, 64]
    # the best pipeline: compensation + BN recalibration + searched strategy + distillation
    assert recipe.recovery.compensate and recipe.recovery.bn_reestimation
    assert recipe.recovery.distill is not None and recipe.recovery.finetune is not None
    assert recipe.search.recover_epochs >= 1
    assert recipe.threads == 1  # a small model on a shared 2-core machine: one thread


def test_example_demo_recipe_is_the_demo() -> None:
    from prunekit.recipe import load_recipe

    example = Path(__file__).resolve().parents[1] / "examples" / "recipes" / "demo.yaml"
    assert load_recipe(example).to_dict() == demo_recipe().to_dict()


def test_demo_command_is_registered() -> None:
    names = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    assert "demo" in names and callable(demo.main)


def test_demo_recipe_changes_merge_into_sections() -> None:
    small = demo_recipe(train={"epochs": 2}, recovery={"finetune": {"epochs": 1}})
    assert small.train.epochs == 2 and small.train.lr == demo_recipe().train.lr
    assert small.recovery.finetune is not None and small.recovery.finetune.epochs == 1
    assert small.recovery.finetune.lr == 0.003 and small.recovery.compensate


def test_demo_docstrings_run() -> None:
    result = doctest.testmod(demo, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.parametrize(
    ("baseline", "pruned", "macs", "gap", "ok"),
    [
        (0.959, 0.962, 0.497, 0.3, True),  # better than the baseline
        (0.960, 0.955, 0.497, -0.5, True),  # exactly the allowed drop
        (0.960, 0.954, 0.497, -0.6, False),  # one test image too many
        (0.960, 0.960, 0.501, 0.0, False),  # accuracy kept, but not half the MACs
        (0.960, 0.960, 0.500, 0.0, True),
    ],
)
def test_accuracy_gap_logic(
    baseline: float, pruned: float, macs: float, gap: float, ok: bool
) -> None:
    outcome = DemoOutcome(baseline, pruned, macs)
    assert outcome.gap_points == pytest.approx(gap, abs=1e-9)
    assert outcome.within_target is ok
    (line,) = outcome.lines()  # no search record: only the test line
    assert line.startswith("test split") and ("within" if ok else "MISSES") in line


def test_regression_gap_at_the_limit_is_not_lost_to_float_error() -> None:
    # 100 * (0.955 - 0.96) is -0.5000000000000004 in floating point
    assert 100 * (0.955 - 0.96) + MAX_DROP_POINTS < 0
    assert DemoOutcome(0.96, 0.955, 0.5).within_target


def test_summary_labels_validation_and_test() -> None:
    lines = DemoOutcome(0.96, 0.958, 0.49, 0.972, 0.966, "taylor-global").lines()
    assert lines[0].startswith("validation split") and "97.20%" in lines[0]
    assert "taylor-global 96.60%" in lines[0]
    assert lines[1].startswith("test split (held out") and "96.00% -> pruned 95.80%" in lines[1]


def test_regression_search_with_compensation_and_quick_recovery(tmp_path: Path) -> None:
    # compensation reads the kept units from the weights, so it must run right after the cut:
    # after the search's quick recovery it raised RecoveryError ("cannot tell which ...")
    from prunekit.pipeline import run
    from prunekit.recipe import parse_recipe

    recipe = parse_recipe(
        "model: {name: mlp, kwargs: {hidden: [32]}}\ndata: {name: iris}\n"
        "train: {epochs: 3, cache: false}\nsearch: {budget: {macs: 0.5}, steps: 2, "
        "recover_epochs: 1}\nrecovery: {compensate: true, finetune: {epochs: 1}}\n"
        "evaluation: {latency: false}\noutput: {save_model: false}\n"
    )
    result = run(recipe, mode="search", out_dir=tmp_path / "run", progress=False)
    assert result.recovery["compensate"] == "every search candidate, right after its cut"
    assert result.stages[-1].macs <= result.stages[0].macs // 2 + 1


SMALL = {
    "train": {"epochs": 2},
    "search": {"steps": 2, "strategies": [{"importance": "l2", "scope": "global"}]},
    "recovery": {"finetune": {"epochs": 1}},
    "evaluation": {"sensitivity": False, "latency": False},
    "output": {"save_model": False},
}


def test_reduced_demo_runs_the_pipeline_and_is_the_same_cold_and_warm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "cache"))
    lines: list[str] = []
    recipe = demo_recipe(**SMALL)
    cold = demo.run_demo(tmp_path / "cold", progress=False, log=lines.append, recipe=recipe)
    warm = demo.run_demo(tmp_path / "warm", progress=False, recipe=recipe)
    outcome = demo_outcome(cold)
    # the pipeline ran: a searched cut at <= half the MACs, compensated per candidate, then
    # distilled; the verdict is computed from the run's own numbers
    assert [s.stage for s in cold.stages] == ["baseline", "cut", "recovered"]
    assert outcome.macs_ratio <= MAX_MACS_RATIO
    assert cold.recovery["compensate"] == "every search candidate, right after its cut"
    assert "finetune" in cold.recovery
    assert outcome.baseline_test == cold.stages[0].accuracy
    assert outcome.pruned_test == cold.stages[-1].accuracy
    assert outcome.gap_points == pytest.approx(100 * (outcome.pruned_test - outcome.baseline_test))
    assert outcome.within_target is (outcome.gap_points >= -MAX_DROP_POINTS)
    assert outcome.strategy == "l2-global" and outcome.baseline_val is not None
    assert any(line.startswith("validation split") for line in lines)
    assert any(line.startswith("test split") for line in lines)
    # regression: the first run trains the baseline, the second loads it from the cache; the
    # training's random draws must not leak into the rest of the run
    assert [(s.accuracy, s.macs) for s in warm.stages] == [
        (s.accuracy, s.macs) for s in cold.stages
    ]
    assert warm.plan == cold.plan
