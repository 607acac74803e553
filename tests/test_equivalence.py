"""The invariant written once (prunekit.equivalence), the model I/O rules (prunekit._modelio),
and what the pruner does when a check fails."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from torch import nn

import prunekit
import prunekit.cost
import prunekit.evaluation.cost
from prunekit import _modelio
from prunekit.equivalence import ATOL, RTOL, compare_outputs, outputs_close
from prunekit.errors import ConfigError, EquivalenceError, PrunekitError


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


X = torch.randn(2, 4)


# --------------------------------------------------------------------------- the rule


def test_rule_allows_rounding_relative_to_the_largest_magnitude() -> None:
    want = [torch.tensor([1000.0, 1.0])]
    # 1e-5 of the largest magnitude (1000) is 0.01: a 0.005 error on the small entry passes
    assert compare_outputs(want, [torch.tensor([1000.0, 1.005])]) == pytest.approx(0.005, rel=1e-3)
    with pytest.raises(EquivalenceError, match="output 0 changed"):
        compare_outputs(want, [torch.tensor([1000.0, 1.1])])


def test_regression_infinite_output_does_not_disable_the_tolerance() -> None:
    # the scale is the largest *finite* magnitude: an inf in the reference must not make
    # every error acceptable (check_equivalence scaled atol by the raw max, i.e. by inf)
    want = [torch.tensor([float("inf"), 1.0])]
    with pytest.raises(EquivalenceError, match="output 0"):
        compare_outputs(want, [torch.tensor([float("inf"), 2.0])])
    assert compare_outputs(want, [torch.tensor([float("inf"), 1.0])]) == 0.0


def test_regression_integer_outputs_must_be_equal() -> None:
    # the probe and the post-cut check skipped integer outputs; check_equivalence compared them
    want = [torch.tensor([1.0]), torch.tensor([3, 1])]
    assert not outputs_close(want, [torch.tensor([1.0]), torch.tensor([3, 2])])
    with pytest.raises(EquivalenceError, match="output 1: the integer outputs differ"):
        compare_outputs(want, [torch.tensor([1.0]), torch.tensor([3, 2])])


def test_count_shape_and_nan_placement() -> None:
    nan = float("nan")
    with pytest.raises(EquivalenceError, match="returns 1 output tensors, not 2"):
        compare_outputs([torch.ones(1), torch.ones(1)], [torch.ones(1)])
    with pytest.raises(EquivalenceError, match=r"shape \(2,\) != \(1,\)"):
        compare_outputs([torch.ones(1)], [torch.ones(2)])
    assert outputs_close([torch.tensor([nan, 1.0])], [torch.tensor([nan, 1.0])])
    assert not outputs_close([torch.tensor([nan, 1.0])], [torch.tensor([1.0, 1.0])])


def test_check_equivalence_defaults_are_the_rule() -> None:
    import inspect

    sig = inspect.signature(prunekit.testing.check_equivalence)
    assert (sig.parameters["rtol"].default, sig.parameters["atol"].default) == (RTOL, ATOL)
    report = prunekit.testing.check_equivalence(mlp(), X)
    assert report.groups_tested == 1 and report.max_abs_error < 1e-5


# --------------------------------------------------------------------------- the pruner


class Failing:
    """A criterion that fails with a plain RuntimeError, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, group: Any, tensors: Any) -> torch.Tensor:
        self.calls += 1
        raise RuntimeError("criterion bug")


def test_regression_step_redoes_only_a_failed_check() -> None:
    # a bug outside the cut check used to be retried (the whole step ran twice, probes and
    # all) and then raised anyway; only EquivalenceError means "redo the step probed"
    crit = Failing()
    with pytest.raises(RuntimeError, match="criterion bug"):
        prunekit.prune(mlp(), X, ratio=0.5, importance=crit)  # type: ignore[arg-type]
    assert crit.calls == 1


def test_failed_check_redoes_the_step_with_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    attempt = prunekit.pruner.Pruner._attempt

    def spy(self: Any, current: Any, spec: Any, tg: Any, only: Any, probe: bool) -> Any:
        calls.append(probe)
        return attempt(self, current, spec, tg, only, probe)

    def fails(*args: object, **kwargs: object) -> None:
        raise EquivalenceError("injected: outputs changed")

    monkeypatch.setattr(prunekit.pruner.Pruner, "_attempt", spy)
    monkeypatch.setattr(prunekit.pruner, "verified_cut", fails)
    res = prunekit.prune(mlp(), X, ratio=0.5)
    assert calls == [False, True]
    assert res.model[0].out_features == 4


def test_cut_model_that_does_not_run_raises_equivalence_error() -> None:
    # check_runs' failures are EquivalenceError (a PrunekitError, as before)
    from prunekit.verify import check_runs

    net = mlp()
    with pytest.raises(EquivalenceError, match="output shapes") as info:
        check_runs(net, X, torch.zeros(2, 5))
    assert isinstance(info.value, PrunekitError)


# --------------------------------------------------------------------------- analyze(probe=)


def test_analyze_verify_is_a_deprecated_alias_of_probe() -> None:
    net = mlp()
    with pytest.warns(DeprecationWarning, match=r"analyze\(probe=\.\.\.\)"):
        old = prunekit.analyze(net, X, verify=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = prunekit.analyze(net, X, probe=False)
    assert [g.key for g in old.groups] == [g.key for g in new.groups]
    with pytest.raises(ConfigError, match="deprecated alias"):
        prunekit.analyze(net, X, probe=False, verify=True)


# --------------------------------------------------------------------------- model I/O, cost


def test_model_io_is_one_set_of_functions() -> None:
    from prunekit.evaluation import _runtime
    from prunekit.export import checks as export_checks
    from prunekit.graph import tracer
    from prunekit.importance import calibration
    from prunekit.recovery import batches

    assert tracer.call_model is batches.call_model is export_checks.call_model
    assert tracer.call_model is _modelio.call_model
    assert tracer.eval_mode is _runtime.eval_mode is _modelio.eval_mode
    assert tracer.flatten_tensors is export_checks.flat_outputs is _modelio.flatten_tensors
    assert batches.to_device is calibration.to_device is _runtime.to_device is _modelio.to_device
    assert batches.default_inputs is calibration.default_inputs is _modelio.default_inputs
    assert batches.model_device is _runtime.model_device is _modelio.model_device


def test_eval_mode_restores_every_flag_also_on_error() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    net[1].eval()
    with pytest.raises(ValueError), _modelio.eval_mode(net):
        assert not any(m.training for m in net.modules())
        raise ValueError
    assert [m.training for m in net.modules()] == [True, True, False]


def test_to_device_keeps_containers() -> None:
    from collections import namedtuple

    Pair = namedtuple("Pair", "a b")
    moved = _modelio.to_device({"p": Pair(torch.ones(1), 3), "l": [torch.zeros(1)]}, "cpu")
    assert isinstance(moved["p"], Pair) and moved["p"].b == 3
    assert _modelio.to_device(X, None) is X


def test_cost_lives_below_the_pruner_and_evaluation_re_exports_it() -> None:
    assert prunekit.evaluation.cost.count_macs is prunekit.cost.count_macs
    assert prunekit.evaluation.CostReport is prunekit.cost.CostReport
    assert prunekit.cost.count_macs(nn.Linear(4, 3), torch.zeros(2, 4)) == 24
