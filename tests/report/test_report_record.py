"""RunRecord, layer_widths and the summary numbers, checked by hand."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ConfigError
from prunekit.report import RunRecord, layer_widths
from prunekit.report.plots_model import sensitivity_ranking
from prunekit.report.summary import headline, summary_rows


def test_record_round_trips_through_json() -> None:
    rec = RunRecord(
        title="t",
        recipe={"prune": {"ratio": 0.5}},
        baseline={"accuracy": 0.9, "latency_ms": {1: 2.0, 64: 30.0}, "confusion": [[3, 1], [0, 4]]},
        pruned={"accuracy": 0.85},
        layer_widths={"conv": (16, 8)},
        importance={"g": [0.1, 0.2]},
        sensitivity={"g": {0.1: 0.9, 0.5: 0.7}},
        tradeoff=[{"strategy": "l2", "macs": 10, "params": 5, "metric": 0.8, "chosen": True}],
        timings={"prune": 1.5},
        newly_wrong=[{"index": 3, "true": 1, "pred_before": 1, "pred_after": 0}],
        class_names=["a", "b"],
        notes="one note",
        meta={"seed": 0},
    )
    assert rec.notes == ["one note"] and rec.baseline["latency_ms"] == {"1": 2.0, "64": 30.0}
    data = json.loads(rec.to_json())
    assert data["sensitivity"] == {"g": {"0.1": 0.9, "0.5": 0.7}}
    assert data["layer_widths"] == {"conv": [16, 8]}
    back = RunRecord.from_json(rec.to_json())
    assert back == rec
    assert back.sensitivity["g"][0.5] == 0.7 and back.layer_widths["conv"] == (16, 8)


def test_record_rejects_bad_parts_by_name() -> None:
    with pytest.raises(ConfigError, match=r"RunRecord.baseline is a list; it must be a dict"):
        RunRecord(baseline=[0.9])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"no field\(s\) \['accuracy'\]; valid fields"):
        RunRecord.from_dict({"accuracy": 0.9})
    with pytest.raises(ConfigError, match="layer_widths maps names"):
        RunRecord(layer_widths={"fc": (8,)})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="format 7"):
        RunRecord.from_dict({"format": 7})


def test_layer_widths_reads_dim0_of_each_weight() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 32),
        nn.LayerNorm(32),
        nn.Linear(32, 5),
    )
    pruned = prunekit.prune(net, torch.randn(2, 3, 4, 4), ratio=0.5).model
    widths = layer_widths(net, pruned)
    # Conv/BN share the 16 channels, Linear/LayerNorm the 32 features: halves of each;
    # the output layer keeps its 5 classes. Modules without a weight are not listed.
    assert widths == {"0": (16, 8), "1": (16, 8), "4": (32, 16), "5": (32, 16), "6": (5, 5)}


def test_layer_widths_missing_module_is_zero() -> None:
    original = nn.ModuleDict({"a": nn.Linear(2, 3), "b": nn.Linear(3, 4)})
    assert layer_widths(original, nn.ModuleDict({"a": nn.Linear(2, 3)})) == {
        "a": (3, 3),
        "b": (4, 0),
    }


def test_summary_rows_by_hand() -> None:
    rec = RunRecord(
        baseline={
            "loss": 0.05,
            "accuracy": 0.9,
            "params": 1000,
            "macs": 5e6,
            "latency_ms": {1: 2.0},
        },
        pruned={"loss": 0.25, "accuracy": 0.875, "params": 400, "latency_ms": {1: 0.5}},
    )
    rows = {r.metric: r for r in summary_rows(rec)}
    assert [r.metric for r in summary_rows(rec)] == [
        "accuracy",
        "params",
        "macs",
        "latency, batch 1",
        "loss",
    ]
    assert rows["accuracy"].change == pytest.approx(-2.5)  # (0.875 - 0.9) * 100 points
    assert rows["accuracy"].cells() == ["accuracy", "90.00%", "87.50%", "-2.50 pts"]
    assert rows["params"].change == pytest.approx(0.4)  # 400 / 1000
    assert rows["params"].cells()[3] == "0.400x (-60.0%)"
    assert rows["macs"].change is None and rows["macs"].cells()[2] == "—"
    assert rows["latency, batch 1"].change == pytest.approx(4.0)  # 2.0 / 0.5
    assert rows["latency, batch 1"].cells()[3] == "4.00x faster"
    assert rows["loss"].kind == "value" and rows["loss"].change == pytest.approx(0.2)
    assert headline(rec) == (
        "accuracy 90.00% → 87.50% (a drop of 2.50 points); parameters 0.400x; "
        "4.00x faster at batch 1."
    )


def test_sensitivity_ranking_by_hand() -> None:
    rec = RunRecord(
        baseline={"accuracy": 0.9},
        sensitivity={"a": {0.2: 0.88, 0.8: 0.6}, "b": {0.2: 0.5}, "c": {0.5: 0.89}},
    )
    ranking = sensitivity_ranking(rec)
    assert [g for g, _ in ranking] == ["b", "a", "c"]
    assert [round(d, 6) for _, d in ranking] == [0.4, 0.3, 0.01]  # 0.9 - min(curve)
    no_base = RunRecord(sensitivity={"a": {0.2: 0.8, 0.8: 0.5}})
    assert sensitivity_ranking(no_base)[0][1] == pytest.approx(0.3)  # own best - worst
