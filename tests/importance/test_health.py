"""Calibration health: an overfit model's training data warns, held-out data does not;
too few samples warn; non-finite statistics raise before any group is scored."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import prunekit
from prunekit.data import load_digits
from prunekit.errors import CalibrationWarning, NonFiniteError
from prunekit.importance import (
    OBS,
    APoZ,
    CalibrationStats,
    Fisher,
    LossContribution,
    Taylor,
    check_calibration,
)
from prunekit.importance.health import GRAD_RATIO_FLOOR, LOSS_FLOOR, count_samples

Batch = tuple[torch.Tensor, torch.Tensor]


def ce(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    return F.cross_entropy(out, batch[1])


@pytest.fixture(scope="module")
def overfit() -> tuple[nn.Module, list[Batch], list[Batch]]:
    """A digits MLP fit to 100% of its 300 training images; 250 held-out images."""
    torch.manual_seed(0)
    train, val = load_digits(seed=0)
    x, y = train.tensors[0].flatten(1), train.tensors[1]
    vx, vy = val.tensors[0].flatten(1), val.tensors[1]
    net = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):
        loss = ce(net(x[:300]), (x[:300], y[:300]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        assert float((net(x[:300]).argmax(1) == y[:300]).float().mean()) == 1.0
    held = [(vx[i : i + 50], vy[i : i + 50]) for i in range(0, 250, 50)]
    return net, [(x[i : i + 50], y[i : i + 50]) for i in range(0, 250, 50)], held


def warned(crit: object, net: nn.Module) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        prunekit.prune(net, torch.zeros(1, 64), ratio=0.5, importance=crit, ignore=[net[2]])
    return [str(w.message) for w in seen if issubclass(w.category, CalibrationWarning)]


@pytest.mark.parametrize("make", [Taylor, Fisher, LossContribution])
def test_overfit_model_on_its_training_data_warns_with_the_fix(make: type, overfit) -> None:  # type: ignore[no-untyped-def]
    net, train, held = overfit
    kwargs = {"chunks": 1} if make is LossContribution else {}
    msgs = warned(make(data=train, loss_fn=ce, **kwargs), net)
    assert any("loss near zero" in m for m in msgs)
    assert all("pass held-out batches" in m and make.__name__ in m for m in msgs)
    if make is not LossContribution:  # gradients are measured: they vanish too
        assert any("vanishing gradients" in m for m in msgs)
    assert warned(make(data=held, loss_fn=ce, **kwargs), net) == []


def test_too_few_samples_for_the_units_warns() -> None:
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    msgs = warned_small(APoZ(data=[torch.randn(4, 3)]), net)
    assert len(msgs) == 1 and "4 calibration samples for groups of up to 8 units" in msgs[0]
    assert warned_small(OBS(data=[torch.randn(4, 3), torch.randn(4, 3)]), net) == []


def warned_small(crit: object, net: nn.Module) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        prunekit.prune(net, torch.zeros(1, 3), ratio=0.5, importance=crit, ignore=[net[2]])
    return [str(w.message) for w in seen if issubclass(w.category, CalibrationWarning)]


def test_regression_nonfinite_calibration_stats_raise_before_scoring() -> None:
    """Stats with NaN (e.g. reduced from a rank whose activations overflowed) used to give
    NaN scores when a group was scored directly; now prepare() raises, naming the stat."""
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    graph = prunekit.analyze(net, torch.zeros(1, 3))
    bad = torch.full((4, 3), float("nan"))
    stats = CalibrationStats({"wg/0.weight": bad}, {"batches": 1.0, "samples": 8.0})
    with pytest.raises(NonFiniteError, match="wg/0.weight"):
        Taylor(stats=stats).prepare(net, graph)


def test_health_thresholds_and_sample_count() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = check_calibration("X", samples=10, graph=None, mean_loss=LOSS_FLOOR * 2)
    assert h.warned == [] and h.samples == 10
    assert count_samples([(torch.zeros(5, 2), 0), (torch.zeros(3, 2), 1)], lambda b: b[0]) == 8
    assert 0 < GRAD_RATIO_FLOOR < 0.03  # the held-out ratio measured on digits: 0.03-0.05
    with pytest.raises(NonFiniteError, match="mean calibration loss"):
        check_calibration("X", samples=10, graph=None, mean_loss=float("inf"))


def test_recipe_criteria_calibrate_on_the_held_out_split_and_say_so() -> None:
    from prunekit.pipeline.cut import build_importance, calibration_note
    from prunekit.recipe import parse_recipe, resolve_data

    text = "model: {name: mlp}\ndata: {name: iris}\nprune: {ratio: 0.5, importance: taylor%s}\n"
    r = parse_recipe(text % "")
    data = resolve_data(r)
    assert r.prune is not None
    crit = build_importance(r.prune, data)
    assert isinstance(crit, Taylor) and crit.calibration is not None
    assert crit.calibration.data is data.val
    assert calibration_note(r.prune) == (
        "criterion taylor calibrated on 8 batches of the val split (held out from training)"
    )
    r2 = parse_recipe(text % ", calibration_split: train")
    assert r2.prune is not None and r2.prune.calibration_split == "train"
    crit2 = build_importance(r2.prune, data)
    assert isinstance(crit2, Taylor) and crit2.calibration is not None
    assert crit2.calibration.data is data.train
    r3 = parse_recipe(text.replace("taylor", "l2") % "")
    assert r3.prune is not None and calibration_note(r3.prune) is None
