"""The bad-input catalogue: every case raises one prunekit error whose message names the bad
value, and leaves the input model exactly as it was (see tests/untouched.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import (
    ConfigError,
    DataError,
    ExportError,
    NonFiniteError,
    PlanError,
    PrunekitError,
    RecipeError,
    RegistryError,
    TraceError,
)
from prunekit.importance import Taylor
from prunekit.recipe import parse_recipe
from tests.untouched import Snapshot

X = torch.randn(2, 3, 8, 8)


def make_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3))


class Other(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 16), nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x).relu())


def prune(model: nn.Module, **kw: Any) -> Any:
    kw.setdefault("bn_data", False)
    return prunekit.prune(model, kw.pop("x", X), **kw)


def _saved(model: nn.Module, tmp: Path, damage: Callable[[Path], None] | None = None) -> Path:
    out = tmp / "saved"
    prunekit.save(prune(model, ratio=0.5), out)
    if damage is not None:
        damage(out)
    return out


def _plan_json(model: nn.Module) -> dict[str, Any]:
    return prune(model, ratio=0.5).plan.to_dict()  # type: ignore[no-any-return]


def _other_plan() -> dict[str, Any]:
    return prune(Other(), ratio=0.5, x=torch.randn(2, 4)).plan.to_dict()  # type: ignore[no-any-return]


def _tampered(model: nn.Module) -> str:
    data = _plan_json(model)
    key = next(iter(data["removed"]))
    data["removed"][key] = [0, 99]
    return json.dumps(data)


def _nan_weight(model: nn.Module) -> None:
    other = make_net()
    with torch.no_grad():
        other[3].weight[0, 0, 0, 0] = float("nan")
    prune(other, ratio=0.5)


def _meta(model: nn.Module) -> None:
    prune(make_net().to("meta"), ratio=0.5)


def _nan_data(model: nn.Module) -> None:
    data = [torch.randn(4, 3, 8, 8), torch.full((4, 3, 8, 8), float("nan"))]
    crit = Taylor(data=data, loss_fn=lambda out, b: out.pow(2).mean())
    prune(model, ratio=0.5, importance=crit)


def _recipe(prune_section: str) -> Callable[[nn.Module], None]:
    def run(model: nn.Module) -> None:
        parse_recipe(f"model: {{name: mlp}}\ndata: {{name: iris}}\nprune: {prune_section}\n")

    return run


@dataclass
class Case:
    """``run(model, tmp_path)`` must raise ``error`` with a message matching ``names``."""

    id: str
    run: Callable[..., Any]
    error: type[PrunekitError]
    names: str


def _t(fn: Callable[[nn.Module], Any]) -> Callable[[nn.Module, Path], Any]:
    return lambda model, tmp: fn(model)


CASES = [
    # ratios
    Case("ratio_negative", _t(lambda m: prune(m, ratio=-0.1)), ConfigError, r"ratio=-0\.1"),
    Case("ratio_above_one", _t(lambda m: prune(m, ratio=1.5)), ConfigError, r"ratio=1\.5"),
    Case("ratio_one", _t(lambda m: prune(m, ratio=1.0)), ConfigError, r"ratio=1\.0"),
    Case("ratio_nan", _t(lambda m: prune(m, ratio=float("nan"))), ConfigError, "ratio=nan"),
    Case("ratio_str", _t(lambda m: prune(m, ratio="0.5")), ConfigError, "ratio='0.5'"),
    Case("ratio_missing", _t(lambda m: prune(m)), ConfigError, "ratio=None"),
    Case(
        "max_ratio_above_one",
        _t(lambda m: prune(m, ratio=0.5, max_ratio=1.5)),
        ConfigError,
        r"max_ratio=1\.5",
    ),  # fmt: skip
    Case(
        "threshold_nan",
        _t(lambda m: prune(m, threshold=float("nan"))),
        ConfigError,
        "threshold=nan",
    ),  # fmt: skip
    Case(
        "module_ratio_above_one",
        _t(lambda m: prune(m, module_ratios={"0": 2.0})),
        ConfigError,
        r"module_ratios\['0'\]=2\.0",
    ),  # fmt: skip
    Case(
        "module_ratios_matching_nothing",
        _t(lambda m: prune(m, module_ratios={"layer9*": 0.5})),
        ConfigError,
        r"'layer9\*' matches no module",
    ),  # fmt: skip
    Case(
        "group_ratios_unknown_key",
        _t(lambda m: prune(m, group_ratios={"nope:0": 0.5})),
        ConfigError,
        "nope:0",
    ),  # fmt: skip
    # budgets
    Case("target_macs_zero", _t(lambda m: prune(m, target_macs=0)), ConfigError, "target_macs=0"),
    Case(
        "target_macs_1_5", _t(lambda m: prune(m, target_macs=1.5)), ConfigError, r"target_macs=1\.5"
    ),  # fmt: skip
    Case(
        "target_params_negative",
        _t(lambda m: prune(m, target_params=-3)),
        ConfigError,
        "target_params=-3",
    ),  # fmt: skip
    Case(
        "target_params_nan",
        _t(lambda m: prune(m, target_params=float("nan"))),
        ConfigError,
        "target_params=nan",
    ),  # fmt: skip
    Case(
        "two_budgets",
        _t(lambda m: prune(m, target_macs=0.5, target_params=0.4)),
        ConfigError,
        r"'params': 0\.4.*'macs': 0\.5",
    ),  # fmt: skip
    Case(
        "ratio_and_budget",
        _t(lambda m: prune(m, ratio=0.5, target_params=0.4)),
        ConfigError,
        r"ratio=0\.5.*'params': 0\.4",
    ),  # fmt: skip
    # names and modes
    Case(
        "importance_typo", _t(lambda m: prune(m, ratio=0.5, importance="l3")), RegistryError, "'l3'"
    ),  # fmt: skip
    Case(
        "ignore_typo", _t(lambda m: prune(m, ratio=0.5, ignore=["conv9"])), ConfigError, "'conv9'"
    ),  # fmt: skip
    Case(
        "ignore_foreign_module",
        _t(lambda m: prune(m, ratio=0.5, ignore=[nn.Linear(2, 2)])),
        ConfigError,
        "Linear that is not a submodule",
    ),  # fmt: skip
    Case(
        "round_to_zero", _t(lambda m: prune(m, ratio=0.5, round_to=0)), ConfigError, "round_to=0"
    ),  # fmt: skip
    Case(
        "scope_typo", _t(lambda m: prune(m, ratio=0.5, scope="globl")), ConfigError, "scope='globl'"
    ),  # fmt: skip
    Case(
        "attention_typo",
        _t(lambda m: prune(m, ratio=0.5, attention="head")),
        ConfigError,
        "attention='head'",
    ),  # fmt: skip
    Case(
        "trace_mode_typo",
        _t(lambda m: prune(m, ratio=0.5, trace_mode="training")),
        ConfigError,
        "trace_mode='training'",
    ),  # fmt: skip
    Case(
        "verify_typo",
        _t(lambda m: prune(m, ratio=0.5, verify="exactly")),
        ConfigError,
        "verify='exactly'",
    ),  # fmt: skip
    Case(
        "schedule_typo",
        _t(lambda m: prune(m, ratio=0.5, schedule="iterativ")),
        RegistryError,
        "'iterativ'",
    ),  # fmt: skip
    Case(
        "granularity_typo",
        _t(lambda m: prune(m, ratio=0.5, granularity="3:x")),
        ConfigError,
        "granularity='3:x'",
    ),  # fmt: skip
    Case(
        "steps_without_schedule", _t(lambda m: prune(m, ratio=0.5, steps=3)), ConfigError, "steps=3"
    ),  # fmt: skip
    # the model and its inputs
    Case(
        "model_not_a_module", _t(lambda m: prune("resnet18", ratio=0.5)), ConfigError, "got str"
    ),  # fmt: skip
    Case(
        "model_state_dict",
        _t(lambda m: prune(m.state_dict(), ratio=0.5)),
        ConfigError,
        "got OrderedDict",
    ),  # fmt: skip
    Case("model_on_meta_device", _t(_meta), ConfigError, r"meta device \(0\.weight"),
    Case("nan_weights", _t(_nan_weight), NonFiniteError, r"3\.weight \(1 nan"),
    Case(
        "example_inputs_wrong_shape",
        _t(lambda m: prune(m, ratio=0.5, x=torch.randn(2, 5, 8, 8))),
        TraceError,
        r"input\[2, 5, 8, 8\]",
    ),  # fmt: skip
    Case(
        "example_inputs_nan",
        _t(lambda m: prune(m, ratio=0.5, x=torch.full((2, 3, 8, 8), float("nan")))),
        NonFiniteError,
        "example inputs hold non-finite",
    ),  # fmt: skip
    Case(
        "bn_data_wrong_shape",
        _t(lambda m: prune(m, ratio=0.5, bn_data=[torch.randn(2, 5, 8, 8)])),
        DataError,
        r"batch 0 has inputs of shape \(2, 5, 8, 8\)",
    ),  # fmt: skip
    Case(
        "bn_data_wrong_shape_inplace",
        _t(lambda m: prune(m, ratio=0.5, inplace=True, bn_data=[X, X[:, :2]])),
        DataError,
        r"batch 1 has inputs of shape \(2, 2, 8, 8\)",
    ),  # fmt: skip
    Case("bn_data_nan", _t(_nan_data), NonFiniteError, "Taylor: calibration batch 1"),
    Case(
        "bn_bn_data_nan",
        _t(
            lambda m: prune(
                m,
                ratio=0.5,
                inplace=True,
                bn_data=[X, torch.full((2, 3, 8, 8), float("inf"))],
            )
        ),
        NonFiniteError,
        "bn_data batch 1 holds non-finite",
    ),  # fmt: skip
    Case(
        "check_equivalence_ratio_nan",
        _t(lambda m: prunekit.testing.check_equivalence(m, X, ratio=float("nan"))),
        ConfigError,
        "ratio=nan",
    ),  # fmt: skip
    Case(
        "check_equivalence_atol_negative",
        _t(lambda m: prunekit.testing.check_equivalence(m, X, atol=-1.0)),
        ConfigError,
        r"atol=-1\.0",
    ),  # fmt: skip
    Case("analyze_not_a_module", _t(lambda m: prunekit.analyze([m], X)), ConfigError, "got list"),
    # plans
    Case(
        "plan_tampered_indices",
        _t(lambda m: prunekit.PruningPlan.from_json(_tampered(m)).apply(m, X)),
        PlanError,
        r"indices \[0, 99\]",
    ),  # fmt: skip
    Case(
        "plan_not_json",
        _t(lambda m: prunekit.PruningPlan.from_json("{removed: oops")),
        PlanError,
        "not valid JSON",
    ),  # fmt: skip
    Case(
        "plan_missing_file",
        _t(lambda m: prunekit.PruningPlan.from_json("no/such/plan.json")),
        PlanError,
        "no/such/plan.json",
    ),  # fmt: skip
    Case(
        "plan_bad_indices_type",
        _t(lambda m: prunekit.PruningPlan.from_dict({"removed": {"0.weight:0": ["a"]}})),
        PlanError,
        "'a'",
    ),  # fmt: skip
    Case(
        "plan_for_another_model",
        _t(lambda m: prunekit.PruningPlan.from_dict(_other_plan()).apply(m, X)),
        PlanError,
        r"plan group 'fc1\.weight:0' is not a prunable group",
    ),  # fmt: skip
    # saved directories
    Case(
        "load_missing_dir",
        lambda m, tmp: prunekit.load(tmp / "nowhere", m),
        ExportError,
        "nowhere does not exist",
    ),  # fmt: skip
    Case(
        "load_a_file",
        lambda m, tmp: prunekit.load(_saved(m, tmp) / "meta.json", m),
        ExportError,
        "meta.json is a file, not a directory",
    ),  # fmt: skip
    Case(
        "load_missing_inputs",
        lambda m, tmp: prunekit.load(
            _saved(m, tmp, lambda d: (d / "inputs.safetensors").unlink()), m
        ),
        ExportError,
        "inputs.safetensors",
    ),  # fmt: skip
    Case(
        "load_missing_weights",
        lambda m, tmp: prunekit.load(
            _saved(m, tmp, lambda d: (d / "model.safetensors").unlink()), m
        ),
        ExportError,
        "model.safetensors",
    ),  # fmt: skip
    Case(
        "load_missing_meta",
        lambda m, tmp: prunekit.load(_saved(m, tmp, lambda d: (d / "meta.json").unlink()), m),
        ExportError,
        "has no meta.json",
    ),  # fmt: skip
    Case(
        "load_corrupt_meta",
        lambda m, tmp: prunekit.load(
            _saved(m, tmp, lambda d: (d / "meta.json").write_text("{not json")), m
        ),
        ExportError,
        r"meta\.json is not valid JSON",
    ),  # fmt: skip
    Case(
        "load_meta_of_another_format",
        lambda m, tmp: prunekit.load(
            _saved(m, tmp, lambda d: (d / "meta.json").write_text('{"format": 99}')), m
        ),
        ExportError,
        "format 99",
    ),  # fmt: skip
    Case(
        "load_corrupt_plan",
        lambda m, tmp: prunekit.load(
            _saved(m, tmp, lambda d: (d / "plan.json").write_text("{garbage")), m
        ),
        ExportError,
        r"plan\.json",
    ),  # fmt: skip
    Case(
        "load_wrong_factory",
        lambda m, tmp: prunekit.load(_saved(m, tmp), Other),
        ExportError,
        "model_factory built a .*Other",
    ),  # fmt: skip
    Case(
        "load_factory_not_callable",
        lambda m, tmp: prunekit.load(_saved(m, tmp), 42),
        ExportError,
        "model_factory is a int",
    ),  # fmt: skip
    # recipes
    Case("recipe_unknown_key", _t(_recipe("{rato: 0.5}")), RecipeError, "'rato'"),
    Case("recipe_bad_type", _t(_recipe("{ratio: half}")), RecipeError, "prune.ratio"),
    Case("recipe_ratio_out_of_range", _t(_recipe("{ratio: 1.5}")), RecipeError, "prune.ratio"),
    Case("recipe_importance_typo", _t(_recipe("{ratio: 0.5, importance: l3}")), RecipeError, "l3"),
    Case("recipe_scope_typo", _t(_recipe("{ratio: 0.5, scope: globl}")), RecipeError, "globl"),
]


def test_catalogue_is_large_and_named_uniquely() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    model = make_net()
    model.train()
    model(X).sum().backward()  # .grad and running statistics must survive too
    snap = Snapshot.take(model)
    with pytest.raises(case.error, match=case.names):
        case.run(model, tmp_path)
    snap.assert_unchanged(model)
    shutil.rmtree(tmp_path, ignore_errors=True)
