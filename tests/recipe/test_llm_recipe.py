"""LLM recipes (``kind: llm``): typed steps, the library calls they map to, and errors that
name the file, line, key, bad value and the valid choices."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from prunekit.errors import RecipeError
from prunekit.recipe.llm import (
    DepthStep,
    LLMDistillSpec,
    SparseStep,
    StructuredStep,
    is_llm_recipe,
    load_llm_recipe,
    parse_llm_recipe,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "recipes"

GOOD = """\
kind: llm
name: t
model: smollm2-135m
data: {name: shakespeare, calibration_sequences: 4, seq_len: 64}
prune:
  - {method: structured, criterion: wanda_sp, head_ratio: 0.34, target: 0.2, compensation: lsq}
  - {method: depth, ratio: 0.1, metric: angular}
  - {method: sparse, criterion: sparsegpt, pattern: "2:4", damp: 0.02}
evaluation: {windows: 8, stride: 32, speed: false}
"""


def _error(text: str) -> str:
    with pytest.raises(RecipeError) as info:
        parse_llm_recipe(text, source="r.yaml")
    return str(info.value)


def test_good_recipe_is_typed_and_defaults_come_from_the_data_section() -> None:
    r = parse_llm_recipe(GOOD)
    assert [type(s) for s in r.prune] == [StructuredStep, DepthStep, SparseStep]
    assert r.eval_seq_len == 64 and r.evaluation.stride == 32 and r.evaluation.speed is None
    assert r.evaluation.sample is not None and r.evaluation.sample.new_tokens == 8
    assert r.prune[0].call_kwargs()["compensation"] == "lsq"
    assert r.prune[2].call_kwargs() == {"method": "sparsegpt", "pattern": "2:4",
                                        "allocation": "uniform", "damp": 0.02}  # fmt: skip
    one = parse_llm_recipe("kind: llm\nmodel: SmolLM2-135M\nprune: {method: depth, blocks: 2}\n")
    assert one.model.name == "smollm2-135m" and len(one.prune) == 1  # one mapping = one step


def test_step_keywords_are_parameters_of_the_library_functions() -> None:
    """Every keyword a step passes exists in the function it calls (no silent drift)."""
    from prunekit.llm import distill, prune_blockwise, prune_depth, sparsify

    r = parse_llm_recipe(GOOD)
    full = [
        StructuredStep(method="structured", allocation="adaptive", target=0.2, units=["ffn"],
                       round_to=8, lsq_damp=0.1, micro_batch=2, compensation="bias"),
        SparseStep(method="sparse", sparsity=0.5, allocation="owl", owl_lambda=0.1,
                   owl_threshold=4.0, damp=0.01),
    ]  # fmt: skip
    for step in [*r.prune, *full]:
        fn = {"structured": prune_blockwise, "depth": prune_depth, "sparse": sparsify}[step.method]
        params = inspect.signature(fn).parameters
        unknown = set(step.call_kwargs()) - set(params)
        assert not unknown, (step.method, unknown)
    every = {name: 1 for name in LLMDistillSpec.model_fields}
    every.update(alpha_ce=0.5, gradient_checkpointing=True, max_seconds=60.0, seq_len=64)
    kwargs = LLMDistillSpec.model_validate(every).call_kwargs()
    assert set(kwargs) == set(LLMDistillSpec.model_fields) - {"sequences", "seq_len"}
    assert set(kwargs) <= set(inspect.signature(distill).parameters)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prune: {method: depht}", "r.yaml:3: prune.method: 'depht' is not a pruning method; "
         "valid: structured, depth, sparse"),
        ("prune:\n  method: structured\n  head_rato: 0.3\n  target: 0.2",
         "r.yaml:5: prune.head_rato: unknown key 'head_rato'; valid keys: method, criterion, "
         "allocation, head_ratio"),
        ("prune: [{method: depth, blocks: 1}, {method: sparse, pattern: 2-4}]",
         "r.yaml:3: prune.1.pattern: '2-4' is not a sparsity pattern; valid: unstructured, or N:M"),
        ("prune: {method: sparse, pattern: '2:4', allocation: owl}",
         "allocation owl varies the sparsity per block, pattern 2:4 fixes it"),
        ("prune: {method: sparse, pattern: '2:4', sparsity: 0.6}",
         "sparsity 0.6 contradicts pattern 2:4 (sparsity 0.5); remove sparsity"),
        ("prune: {method: depth, blocks: 2, ratio: 0.1}", "give exactly one of blocks"),
        ("prune: {method: structured, head_ratio: 1.5, target: 0.2}",
         "r.yaml:3: prune.head_ratio: Input should be less than 1, got 1.5"),
        ("prune: {method: structured, allocation: adaptive, head_ratio: 0.3, target: 0.2}",
         "allocation adaptive takes target"),
        ("prune: {method: depth, blocks: 1}\nevaluation: {seq_len: 64, stride: 128}",
         "r.yaml:4: evaluation: stride 128 exceeds seq_len 64"),
        ("prune: {method: depth, blocks: 1}\nrecovery: {distill: {stepz: 3}}",
         "r.yaml:4: recovery.distill.stepz: unknown key 'stepz'; valid keys: max_seconds, max_steps"),
        ("prune: {method: depth, blocks: 1}\nevaluation: {speed: {new_tokens: 0}}",
         "evaluation.speed.new_tokens: Input should be greater than or equal to 1, got 0"),
    ],
)  # fmt: skip
def test_structure_errors_name_line_key_value_and_valid_choices(text: str, expected: str) -> None:
    assert expected in _error(f"kind: llm\nmodel: smollm2-135m\n{text}\n")


def test_regression_distill_after_a_sparse_step_is_refused() -> None:
    """Distillation trains every weight: after a sparse step it would silently fill in the
    zeros (measured: a 2:4 model came back 100 % dense), so the recipe is refused."""
    msg = _error(
        "kind: llm\nmodel: smollm2-135m\nprune: [{method: depth, blocks: 1},"
        " {method: sparse, pattern: '2:4'}]\nrecovery: {distill: {max_steps: 10}}\n"
    )
    assert (
        "recovery.distill trains every weight, so it would fill in the zeros of the "
        "sparse step (prune.1)" in msg
    )


def test_registry_names_are_checked_with_the_valid_ones_listed() -> None:
    msg = _error(
        "kind: llm\nmodel: smollm2-13m\ndata: {name: shakspeare}\n"
        "prune: [{method: structured, criterion: flapp, target: 0.2},"
        " {method: depth, blocks: 1, metric: sine}]\n"
    )
    assert (
        "r.yaml:2: model.name: 'smollm2-13m' is not a built-in language model; valid: "
        "smollm2-135m" in msg
    )
    assert "r.yaml:3: data.name: 'shakspeare' is not a text dataset; valid: shakespeare" in msg
    assert "prune.0.criterion: 'flapp' is not an LLM criterion; valid: " in msg and "flap" in msg
    assert "prune.1.metric: 'sine' is not a block-influence metric; valid: cosine, angular" in msg


def test_kind_and_model_directory_are_checked(tmp_path: Path) -> None:
    assert "kind: 'lm' is not a recipe kind; valid: llm" in _error("kind: lm\nmodel: x\n")
    assert "r.yaml:1: prune: is required but missing" in _error("kind: llm\nmodel: smollm2-135m\n")
    (tmp_path / "hf").mkdir()
    recipe = tmp_path / "r.yaml"
    recipe.write_text("kind: llm\nmodel: ./hf\nprune: {method: depth, blocks: 1}\n")
    with pytest.raises(
        RecipeError, match=r"r.yaml:2: model.name: './hf': .*\(no config.json there\)"
    ):
        load_llm_recipe(recipe)
    (tmp_path / "hf" / "config.json").write_text("{}")
    loaded = load_llm_recipe(recipe)  # relative to the recipe's directory, not the cwd
    assert loaded.model.is_directory and loaded.path(loaded.model.name) == tmp_path / "hf"


def test_is_llm_recipe_tells_the_kinds_apart(tmp_path: Path) -> None:
    llm, classic = tmp_path / "a.yaml", tmp_path / "b.yaml"
    llm.write_text("kind: llm\nmodel: smollm2-135m\n")
    classic.write_text("model: {name: mlp}\ndata: {name: iris}\n")
    assert is_llm_recipe(llm) and not is_llm_recipe(classic)
    assert not is_llm_recipe(tmp_path / "missing.yaml")  # left to the classic loader's error


@pytest.mark.parametrize("name", ["smollm2-heads-ffn", "smollm2-depth", "smollm2-2of4"])
def test_example_recipes_validate(name: str) -> None:
    r = load_llm_recipe(EXAMPLES / f"{name}.yaml")
    assert r.name == name and r.model.name == "smollm2-135m" and r.data.name == "shakespeare"
    assert r.eval_seq_len == 512 and r.evaluation.windows == 16
    assert r.data.calibration_sequences == 32 and r.data.seed == 0  # the benchmark protocol


def test_structure_errors_do_not_import_torch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: llm\nmodel: smollm2-135m\nprune: {method: depth, blokcs: 2}\n")
    code = (
        "import json, sys\nfrom prunekit.recipe.llm import load_llm_recipe\n"
        f"try:\n    load_llm_recipe({str(bad)!r})\nexcept Exception as e:\n    msg = str(e)\n"
        "print(json.dumps({'msg': msg, 'torch': 'torch' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert "bad.yaml:3: prune.blokcs: unknown key 'blokcs'" in res["msg"]
    assert res["torch"] is False
