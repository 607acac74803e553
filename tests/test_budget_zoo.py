"""Params and MACs budgets land within one round_to step of the target on zoo models."""

from __future__ import annotations

import warnings

import pytest
from zoo import ZOO

import prunekit
from prunekit.evaluation import count_macs, count_params

CASES = ["mlp", "vgg_bn", "resnet_basic", "mobilenetv2", "transformer_mha", "lstm"]


@pytest.mark.parametrize("metric", ["params", "macs"])
@pytest.mark.parametrize("name", CASES)
def test_budget_lands_within_one_step(name: str, metric: str) -> None:
    case = ZOO[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = prunekit.Pruner(  # every group may go: this tests where a budget lands
            case.model,
            case.example_inputs,
            round_to=4,
            streams="prune",
            **{f"target_{metric}": 0.5},
        )
        res = pruner.step()
    rep = pruner.budget_
    assert rep is not None
    measured = (
        count_params(res.model)
        if metric == "params"
        else count_macs(res.model, case.example_inputs)
    )
    # the smallest cut that meets the target: one unit (one round_to step) less would not
    assert measured == rep.achieved <= rep.target < rep.previous
    assert rep.target == int(0.5 * rep.baseline)
