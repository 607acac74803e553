"""finetune's budgets: ``max_steps`` and ``max_seconds`` stop training, the lr schedule follows
the budget, and the per-step loss curve is recorded."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError
from prunekit.recovery import finetune


def _data(batches: int = 10) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batches * 8, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return [(x[i : i + 8], y[i : i + 8]) for i in range(0, len(x), 8)]


def test_max_steps_stops_mid_epoch_and_the_schedule_spans_it() -> None:
    torch.manual_seed(0)
    res = finetune(nn.Linear(4, 2), _data(10), epochs=3, lr=0.1, max_steps=15, progress=False)
    assert res.steps == 15 and res.stopped_by == "max_steps"
    assert [r.epoch for r in res.history] == [1, 2]  # the second epoch is cut at 5 of 10
    assert len(res.step_losses) == 15
    # cosine over 15 steps (not 30): the last step's rate is 0.5 * (1 + cos(pi * 14 / 15))
    assert res.history[-1].lr == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 14 / 15)))
    assert res.history[1].train_loss == pytest.approx(sum(res.step_losses[10:]) / 5)


def test_budget_equal_to_the_epochs_is_not_a_stop() -> None:
    res = finetune(nn.Linear(4, 2), _data(4), epochs=2, max_steps=8, progress=False)
    assert res.steps == 8 and res.stopped_by is None and len(res.history) == 2


def test_max_seconds_stops_in_time_and_fits_the_schedule() -> None:
    net = nn.Linear(4, 2)

    def slow(module: nn.Module, args: Any) -> None:
        time.sleep(0.1)

    net.register_forward_pre_hook(slow)
    res = finetune(net, _data(100), lr=1.0, max_seconds=1.0, progress=False)
    assert res.stopped_by == "max_seconds"
    assert 3 <= res.steps <= 10 and res.seconds < 1.0 + 0.3
    # the cosine was fitted to the ~9 steps the time allowed, not to the 100 batches
    assert res.history[-1].lr < 0.5


def test_zero_steps_when_the_time_is_gone_before_the_first() -> None:
    # the validation before training takes longer than the whole budget
    def metric(model: nn.Module) -> float:
        time.sleep(0.3)
        return 0.0

    res = finetune(nn.Linear(4, 2), _data(3), metric=metric, max_seconds=0.2, progress=False)
    assert res.steps == 0 and res.history == [] and res.stopped_by == "max_seconds"
    assert res.best_epoch == 0 and not res.restored_best


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_steps": 0}, r"max_steps=0 must be an int >= 1"),
        ({"max_steps": 2.5}, r"max_steps=2.5 must be an int"),
        ({"max_seconds": -1}, r"max_seconds=-1 must be a number > 0"),
        ({"max_seconds": float("inf")}, r"max_seconds=inf must be finite"),
    ],
)
def test_bad_budgets_raise_config_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        finetune(nn.Linear(4, 2), _data(2), progress=False, **kwargs)
