"""Learning-rate schedules: hand-computed multipliers, warm-up, registry errors."""

from __future__ import annotations

import math

import pytest

from prunekit.errors import ConfigError, RegistryError
from prunekit.recovery import available_lr_schedules, lr_factor, register_lr_schedule


def test_builtin_schedules_by_hand() -> None:
    # 10 steps, no warm-up: progress t = step / 10
    assert lr_factor(3, 10, schedule="constant") == 1.0
    assert lr_factor(5, 10, schedule="cosine") == pytest.approx(0.5)
    assert lr_factor(2, 10, schedule="cosine") == pytest.approx(0.5 * (1 + math.cos(0.2 * math.pi)))
    assert [lr_factor(s, 8, schedule="step") for s in (0, 3, 4, 5, 6, 7)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01]
    )


def test_onecycle_rises_from_one_25th_to_peak_at_30_percent_then_falls() -> None:
    values = [lr_factor(s, 100, schedule="onecycle") for s in range(100)]
    assert values[0] == pytest.approx(1 / 25)
    assert values[30] == pytest.approx(1.0)
    assert values[15] == pytest.approx(1 / 25 + (1 - 1 / 25) * 0.5)  # half way up (cosine)
    assert max(values) == values[30] and values[-1] < 1e-3
    with pytest.raises(ConfigError, match="own warm-up"):
        lr_factor(0, 100, schedule="onecycle", warmup=5)


def test_linear_warmup_then_schedule_over_the_remaining_steps() -> None:
    got = [lr_factor(s, 12, schedule="cosine", warmup=4) for s in range(12)]
    assert got[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert got[4] == pytest.approx(1.0)  # progress 0 of the 8 remaining steps
    assert got[8] == pytest.approx(0.5)  # progress 4 / 8


def test_registry_lists_valid_names_and_rejects_duplicates() -> None:
    with pytest.raises(RegistryError, match="constant"):
        lr_factor(0, 10, schedule="linear-ish")
    register_lr_schedule("test_half", lambda t: 0.5)
    assert lr_factor(1, 4, schedule="test_half") == 0.5
    assert "test_half" in available_lr_schedules()
    with pytest.raises(RegistryError, match="already registered"):
        register_lr_schedule("cosine", lambda t: 1.0)
