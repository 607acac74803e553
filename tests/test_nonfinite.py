"""Non-finite and silent cases: NaN/inf weights, inputs and calibration data raise one clear
error before any work; a pattern that matches nothing raises; a BatchNorm model pruned
without calibration data warns."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ConfigError, NonFiniteError
from prunekit.importance import Taylor
from tests.untouched import assert_untouched

X = torch.randn(2, 3, 8, 8)


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(),
                         nn.Conv2d(8, 4, 3))  # fmt: skip


def bn_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3))


@pytest.mark.parametrize("verify", ["exact", "shapes"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_regression_nonfinite_weights_raise_naming_the_parameter(verify: str, value: float) -> None:
    model = net()
    with torch.no_grad():
        model[2].weight[0, 0, 0, 0] = value
    with pytest.raises(NonFiniteError, match=r"2\.weight \((1 nan|0 nan, 1 inf)"):
        assert_untouched(model, prunekit.prune, model, X, ratio=0.5, verify=verify)
    with pytest.raises(NonFiniteError, match=r"2\.weight"):
        assert_untouched(model, prunekit.analyze, model, X)


def test_regression_nonfinite_buffer_raises() -> None:
    model = bn_net()
    model[1].running_var[3] = float("inf")
    with pytest.raises(NonFiniteError, match=r"1\.running_var"):
        assert_untouched(model, prunekit.prune, model, X, ratio=0.5, bn_data=False)


def test_regression_nonfinite_outputs_name_the_inputs() -> None:
    model = net()
    x = X.clone()
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"outputs.*not finite.*example inputs hold"):
        assert_untouched(model, prunekit.prune, model, x, ratio=0.5)


class Overflow(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x).relu()) / 0.0


def test_regression_outputs_overflow_with_finite_inputs() -> None:
    model = Overflow()
    with pytest.raises(NonFiniteError, match="weights are finite"):
        assert_untouched(model, prunekit.prune, model, torch.ones(2, 4), ratio=0.5)


def _loss(out: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    return out.pow(2).mean()


def test_regression_nan_bn_data_raises_naming_criterion_and_batch() -> None:
    model = net()
    data = [torch.randn(4, 3, 8, 8) for _ in range(3)]
    data[1][0, 0, 0, 0] = float("nan")
    crit = Taylor(data=data, loss_fn=_loss)
    with pytest.raises(NonFiniteError, match=r"Taylor: calibration batch 1 holds non-finite"):
        assert_untouched(model, prunekit.prune, model, X, ratio=0.5, importance=crit)


def test_regression_nonfinite_loss_raises_naming_the_batch() -> None:
    model = net()
    data = [torch.randn(4, 3, 8, 8) for _ in range(2)]

    def log_loss(out: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return torch.log(out.abs().mean() * 0.0)  # log 0 = -inf

    with pytest.raises(NonFiniteError, match=r"loss on calibration batch 0 is -inf"):
        assert_untouched(
            model,
            prunekit.prune,
            model,
            X,
            ratio=0.5,
            importance=Taylor(data=data, loss_fn=log_loss),
        )


class NaNScores:
    """A criterion whose scores are NaN (e.g. computed from stats that overflowed)."""

    def __call__(self, group: object, tensors: object) -> torch.Tensor:
        return torch.full((group.num_units,), float("nan"))  # type: ignore[attr-defined]


def test_regression_nonfinite_scores_raise_naming_criterion_and_group() -> None:
    model = net()
    with pytest.raises(
        NonFiniteError, match=r"'NaNScores' gave non-finite scores for groups 0\.weight"
    ):
        assert_untouched(model, prunekit.prune, model, X, ratio=0.5, importance=NaNScores())


def test_regression_module_ratios_pattern_matching_nothing_raises() -> None:
    model = net()
    with pytest.raises(ConfigError, match=r"module_ratios key 'layer9\*' matches no module"):
        assert_untouched(model, prunekit.prune, model, X, module_ratios={"layer9*": 0.5})
    with pytest.raises(ConfigError, match=r"'conv1'.*did you mean one of \[.*'conv2'"):
        prunekit.prune(Named(), X, module_ratios={"conv1": 0.5})
    prunekit.prune(model, X, module_ratios={"2": 0.5, "*": 0.25})  # globs and names still work


class Named(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv2, self.conv3 = nn.Conv2d(3, 8, 3), nn.Conv2d(8, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(x).relu())


def test_regression_prune_warns_about_stale_batchnorm_statistics() -> None:
    model = bn_net()
    with pytest.warns(UserWarning, match=r"prune: the model has BatchNorm.*reestimate_bn"):
        prunekit.prune(model, X, ratio=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prunekit.prune(model, X, ratio=0.5, bn_data=[X])
        prunekit.prune(model, X, ratio=0.5, bn_data=False)
        prunekit.prune(net(), X, ratio=0.5)  # no BatchNorm: no warning


def test_stale_batchnorm_warning_is_one_function_for_prune_and_search() -> None:
    import inspect

    import prunekit.recalibration
    import prunekit.search.search

    # prune's wording lives next to the one warning function; search calls it directly
    source = inspect.getsource(prunekit.recalibration.warn_stale_bn_after_prune)
    assert "warn_stale_bn(" in source
    assert "warn_stale_bn(" in inspect.getsource(prunekit.search.search)
