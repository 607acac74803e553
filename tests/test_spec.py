"""One sizing type (CutSpec), one plan type of steps, model-wide residual streams, and the
recipe's fine-tuning settings reaching a search's quick recovery."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ConfigError
from prunekit.models import build_model
from prunekit.plan import PruningPlan
from prunekit.spec import FINETUNE, CutSpec

X = torch.randn(2, 4)


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2)
    )


# ------------------------------------------------------------------ 1. one sizing type
def test_spec_and_keywords_build_the_same_cut() -> None:
    spec = CutSpec(0.5, scope="global", round_to=4)
    by_spec = prunekit.prune(mlp(), X, spec=spec)
    by_keywords = prunekit.prune(mlp(), X, ratio=0.5, scope="global", round_to=4)
    assert by_spec.plan == by_keywords.plan
    assert prunekit.Pruner(mlp(), X, target_macs=0.5).spec == CutSpec(target_macs=0.5)
    with pytest.raises(ConfigError, match="spec= or the sizing keywords"):
        prunekit.prune(mlp(), X, spec=spec, ratio=0.25)
    with pytest.raises(ConfigError, match="one way to size"):
        CutSpec(0.5, target_params=0.5)
    with pytest.raises(ConfigError, match="streams='all'"):
        CutSpec(0.5, streams="all")
    with pytest.raises(dataclass_error()):
        spec.ratio = 0.2  # type: ignore[misc]  # frozen


def dataclass_error() -> type[Exception]:
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_one_default_per_concept() -> None:
    from prunekit.recipe.schema import FinetuneSpec, PruneSpec, SearchSpec
    from prunekit.recovery import FinetuneConfig
    from prunekit.search import Strategy
    from prunekit.spec import SEARCH_MAX_RATIO, SEARCH_STEPS

    prune_section = PruneSpec.model_validate({"ratio": 0.5})
    assert prune_section.cut_spec() == CutSpec(0.5)  # scope local, as in prune()
    search_section = SearchSpec.model_validate({"tolerance": 0.01})
    assert (search_section.steps, search_section.max_ratio) == (SEARCH_STEPS, SEARCH_MAX_RATIO)
    assert search_section.strategies[0].scope == Strategy().scope == "global"
    ft, cfg = FinetuneSpec.model_validate({}), FinetuneConfig()
    assert (ft.optimizer, ft.lr, ft.epochs) == (cfg.optimizer, cfg.lr, cfg.epochs)
    assert (cfg.optimizer, cfg.lr) == (FINETUNE.optimizer, FINETUNE.lr)
    assert PruneSpec.model_validate({"ratio": 0.5, "schedule": "one-shot"}).schedule == "oneshot"
    with pytest.warns(DeprecationWarning, match="max_ratio"):
        assert Strategy(max_group_ratio=0.5).max_ratio == 0.5


# ------------------------------------------------------------------ 2. one plan, one result
def test_regression_schedule_plan_json_of_the_old_format_loads() -> None:
    # written by the former SchedulePlan.to_json: {"schedule": [step plans], "meta": {}}
    old = json.dumps(
        {
            "schedule": [
                {"format": 1, "removed": {"0.weight:0": list(range(8)), "2.weight:0": [0, 1]},
                 "group_sizes": {"0.weight:0": 32, "2.weight:0": 32}, "meta": {"ratio": 0.25}},
                {"format": 1, "removed": {"0.weight:0": [0, 1, 2, 3]},
                 "group_sizes": {"0.weight:0": 24, "2.weight:0": 30}, "meta": {"ratio": 0.1}},
            ],
            "meta": {"strategy": "l2-global"},
        }
    )  # fmt: skip
    plan = PruningPlan.from_json(old)
    assert plan.is_stepped and len(plan.steps) == 2 and plan.num_removed == 14
    assert plan.meta == {"strategy": "l2-global"} and plan.group_sizes["0.weight:0"] == 32
    net = plan.apply(mlp(), X)
    assert (net[0].out_features, net[2].out_features) == (20, 30)
    assert json.loads(plan.to_json())["schedule"][1]["removed"] == {"0.weight:0": [0, 1, 2, 3]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from prunekit.schedule import SchedulePlan

        assert isinstance(SchedulePlan.from_json(old), SchedulePlan)
        assert not isinstance(PruningPlan({}, {}), SchedulePlan)


def test_prune_returns_one_type_and_ramps_a_budget_from_python() -> None:
    one = prunekit.prune(mlp(), X, ratio=0.5)
    many = prunekit.prune(mlp(), X, target_params=0.5, schedule="iterative", steps=2)
    assert type(one) is type(many) is prunekit.PruneResult
    assert one.steps == [one] and len(many.steps) == 2
    assert many.after.params <= many.before.params // 2
    assert many.summary().widths[0][:2] == ("0.weight:0", 32)
    with pytest.raises(prunekit.errors.PlanError, match="2 steps"):
        _ = many.plan.removed


# ------------------------------------------------------------------ 3. residual streams
class TinyTransformer(nn.Module):
    """Pre-norm blocks (single-head attention + MLP) on a residual stream of ``width``."""

    def __init__(self, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(6, width)
        self.blocks = nn.ModuleList(_Block(width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h).mean(1))


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.q, self.k, self.v = nn.Linear(width, 8), nn.Linear(width, 8), nn.Linear(width, 8)
        self.o = nn.Linear(8, width)
        self.fc1, self.fc2 = nn.Linear(width, 32), nn.Linear(32, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.ln1(h)
        att = torch.softmax(self.q(a) @ self.k(a).transpose(1, 2) / 8**0.5, -1) @ self.v(a)
        h = h + self.o(att)
        return h + self.fc2(torch.relu(self.fc1(self.ln2(h))))


def _transformer() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return TinyTransformer().eval(), torch.randn(2, 5, 6)


def test_streams_keep_leaves_the_transformer_residual_stream_out() -> None:
    model, x = _transformer()
    graph = prunekit.analyze(model, x)
    wide = [g for g in graph.groups if g.model_stream]
    assert [g.key for g in wide] == ["embed.weight:0"] and wide[0].whole_stream
    assert "[model-wide: a cut leaves it out unless streams='prune']" in str(graph)
    with pytest.warns(UserWarning, match="streams='prune'") as seen:
        res = prunekit.prune(model, x, ratio=0.5)
    assert sum("model-wide residual stream" in str(w.message) for w in seen) == 1
    assert res.model.embed.out_features == 16 and res.model.blocks[0].fc1.out_features == 16
    assert res.summary().streams_kept == ["embed.weight:0"]
    assert "left out (model-wide residual stream" in str(res.summary())
    cut = prunekit.prune(model, x, ratio=0.5, streams="prune").model
    assert cut.embed.out_features == 8
    named = prunekit.prune(model, x, group_ratios={"embed.weight:0": 0.25}).model
    assert named.embed.out_features == 12  # asked for by key: cut even with streams="keep"
    with pytest.warns(UserWarning, match="model-wide"):
        budget = prunekit.prune(model, x, target_macs=0.6)
    assert budget.model.embed.out_features == 16 and budget.after.macs <= 0.6 * budget.before.macs


def test_resnet20_has_no_model_wide_stream_and_cuts_as_before() -> None:
    torch.manual_seed(0)
    net = build_model("resnet20", num_classes=10, input_shape=(3, 32, 32)).eval()
    x = torch.randn(1, 3, 32, 32)
    graph = prunekit.analyze(net, x)
    assert sum(g.whole_stream for g in graph.groups) == 3  # one per stage
    assert not any(g.model_stream for g in graph.groups)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no streams warning
        keep = prunekit.prune(net, x, ratio=0.5, bn_data=False)
    also = prunekit.prune(net, x, ratio=0.5, bn_data=False, streams="prune")
    assert keep.plan.removed == also.plan.removed and "conv1.weight:0" in keep.plan.removed


# ------------------------------------------------------------------ fine-tuning settings
def test_regression_search_recovery_uses_the_recipes_finetune(monkeypatch: Any) -> None:
    from prunekit.pipeline import cut as cut_module
    from prunekit.recipe import parse_recipe, resolve_data

    recipe = parse_recipe(
        "model: {name: mlp}\ndata: {name: iris}\nsearch: {budget: {macs: 0.5}, "
        "recover_epochs: 1}\nrecovery: {finetune: {optimizer: sgd, lr: 0.05, epochs: 2}}\n"
    )
    seen: list[dict[str, Any]] = []

    class Stop(Exception):
        pass

    def fake_finetune(model: nn.Module, data: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    def fake_search(model: nn.Module, example: Any, **kwargs: Any) -> None:
        kwargs["recover"](model)
        raise Stop

    monkeypatch.setattr(cut_module, "finetune", fake_finetune)
    monkeypatch.setattr(cut_module, "search", fake_search)
    data = resolve_data(recipe)
    model = build_model("mlp", num_classes=3, input_shape=(4,))
    with pytest.raises(Stop):
        cut_module.cut_search(model, recipe, data, torch.randn(1, 4), progress=False)
    assert seen and (seen[0]["optimizer"], seen[0]["lr"], seen[0]["epochs"]) == ("sgd", 0.05, 1)
