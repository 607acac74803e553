"""Recipe validation: good recipes, line-exact errors, python: factories, the init template."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from prunekit.errors import DataError, RecipeError
from prunekit.recipe import (
    STARTER_RECIPE,
    build_recipe_model,
    import_callable,
    load_recipe,
    parse_recipe,
    resolve_data,
    write_starter,
)

GOOD = """\
name: t
model:
  name: mlp
  kwargs: {hidden: [8]}
data:
  name: iris
  batch_size: 16
prune:
  importance: taylor
  target_macs: 0.5
recovery:
  finetune: {epochs: 1}
  distill: {alpha: 0.3}
"""


def test_good_recipe_is_typed() -> None:
    r = parse_recipe(GOOD)
    assert r.prune is not None and r.prune.importance == "taylor"
    # the recipe takes prune()'s default scope (issue 17: one default per concept)
    assert r.prune.target_macs == 0.5 and r.prune.scope == "local"
    assert r.recovery.distill is not None and r.recovery.distill.alpha == 0.3
    assert r.recovery.bn_reestimation is True
    assert r.run_dir() == Path("runs/t")
    assert r.to_dict()["model"]["kwargs"] == {"hidden": [8]}


def test_unknown_key_names_line_and_valid_keys() -> None:
    text = GOOD.replace("  target_macs: 0.5", "  target_macs: 0.5\n  scpoe: local")
    with pytest.raises(RecipeError) as err:
        parse_recipe(text, source="r.yaml")
    msg = str(err.value)
    assert msg.startswith("r.yaml:11: prune.scpoe: unknown key 'scpoe'")
    assert "valid keys: importance, scope, ratio" in msg


def test_bad_criterion_lists_valid_ones() -> None:
    with pytest.raises(RecipeError) as err:
        parse_recipe(GOOD.replace("taylor", "tayler"), source="r.yaml")
    msg = str(err.value)
    assert msg.startswith("r.yaml:9: prune.importance: 'tayler' is not a criterion; valid: ")
    assert "l1, l2" in msg and "taylor" in msg


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("batch_size: 16", "batch_size: many", "r.yaml:7: data.batch_size"),
        ("name: mlp", "name: lenet", "r.yaml:3: model.name: 'lenet' is not a model"),
        ("name: iris", "name: cifar", "r.yaml:6: data.name: 'cifar' is not a dataset"),
        ("target_macs: 0.5", "target_macs: 0.5\n  ratio: 0.3", "r.yaml:8: prune: give one"),
        ("{epochs: 1}", "{epochs: 0}", "r.yaml:12: recovery.finetune.epochs"),
    ],
)
def test_each_bad_value_is_one_line(old: str, new: str, where: str) -> None:
    with pytest.raises(RecipeError) as err:
        parse_recipe(GOOD.replace(old, new), source="r.yaml")
    assert str(err.value).startswith(where)
    assert "\n" not in str(err.value)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"r.yaml:2: not valid YAML"):
        parse_recipe("model: {name: mlp\ndata: [", source="r.yaml")
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(RecipeError, match="a recipe is a mapping"):
        parse_recipe("- a\n- b\n")


def test_python_factory_relative_to_recipe(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(
        "import torch\n"
        "def build(num_classes, input_shape, width=5):\n"
        "    return torch.nn.Sequential(torch.nn.Linear(input_shape[0], width), torch.nn.ReLU(),\n"
        "                               torch.nn.Linear(width, num_classes))\n"
    )
    (tmp_path / "r.yaml").write_text(
        "model: {name: 'python:./mine.py:build', kwargs: {width: 7}}\ndata: {name: wine}\n"
    )
    recipe = load_recipe(tmp_path / "r.yaml")
    data = resolve_data(recipe)
    model = build_recipe_model(recipe, data.input_shape, data.num_classes)
    assert model[0].in_features == 13 and model[0].out_features == 7
    assert model[2].out_features == 3
    assert model(data.example_inputs()).shape == (1, 3)


def test_python_factory_errors_are_resolution_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        import_callable("python:./missing.py:build", tmp_path)
    with pytest.raises(DataError, match="has no function 'nope'"):
        import_callable("python:math:nope", tmp_path)
    with pytest.raises(DataError, match="cannot import module"):
        import_callable("python:no_such_module_xyz:f", tmp_path)


def test_python_data_factory(tmp_path: Path) -> None:
    (tmp_path / "d.py").write_text(
        "import torch\n"
        "from torch.utils.data import DataLoader, TensorDataset\n"
        "def loaders(batch_size):\n"
        "    x = torch.randn(40, 5); y = torch.arange(40) % 4\n"
        "    ds = TensorDataset(x, y)\n"
        "    return DataLoader(ds, batch_size=batch_size), DataLoader(ds, batch_size=8)\n"
    )
    recipe = parse_recipe(
        "model: {name: mlp}\ndata: {name: 'python:./d.py:loaders', batch_size: 10}\n",
        base_dir=tmp_path,
    )
    data = resolve_data(recipe)
    assert data.input_shape == (5,) and data.num_classes == 4 and data.test is None
    assert len(next(iter(data.train))[0]) == 10


def test_channels_and_size_transform() -> None:
    recipe = parse_recipe("model: {name: mlp}\ndata: {name: digits, channels: 3, size: 16}\n")
    data = resolve_data(recipe)
    assert data.input_shape == (3, 16, 16)
    x = data.example_inputs()
    assert torch.equal(x[:, 0], x[:, 2])


def test_init_template_validates(tmp_path: Path) -> None:
    path = write_starter(tmp_path / "recipe.yaml")
    recipe = load_recipe(path)
    assert recipe.model.name == "lenet5" and recipe.prune is not None
    assert path.read_text() == STARTER_RECIPE
    with pytest.raises(RecipeError, match="already exists"):
        write_starter(path)


def test_example_recipes_validate() -> None:
    root = Path(__file__).resolve().parents[2] / "examples" / "recipes"
    names = sorted(p.name for p in root.glob("*.yaml"))
    assert {"lenet_mnist.yaml", "custom_python.yaml", "torchvision_resnet18.yaml"} <= set(names)
    from prunekit.recipe.llm import is_llm_recipe, load_llm_recipe

    for path in root.glob("*.yaml"):
        if is_llm_recipe(path):  # kind: llm (tests/recipe/test_llm_recipe.py)
            assert load_llm_recipe(path).model
        else:
            assert load_recipe(path).model.name


def test_bn_recalibration_is_the_deprecated_name_of_bn_reestimation(tmp_path: Path) -> None:
    """One meaning per word: the recipe key says BN re-estimation; the old key still loads
    (with a FutureWarning), and a flag the pipeline cannot honour is refused, not ignored."""
    base = "model: {name: mlp}\ndata: {name: digits}\nprune: {ratio: 0.5}\n"
    old = tmp_path / "old.yaml"
    old.write_text(base + "recovery: {bn_recalibration: true}\n")
    with pytest.warns(FutureWarning, match="bn_reestimation"):
        assert load_recipe(old).recovery.bn_reestimation is True
    off = tmp_path / "off.yaml"
    off.write_text(base + "recovery: {bn_reestimation: false}\n")
    with pytest.raises(RecipeError, match="bn_reestimation"):
        load_recipe(off)
