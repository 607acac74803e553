"""The cascade ships: TorchScript equals eager row by row; save/load keeps plans and routing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import prunekit
from prunekit.deploy import (
    Cascade,
    confidence,
    export_cascade_torchscript,
    load_cascade,
    save_cascade,
)
from prunekit.errors import ExportError
from tests.deploy.nets import mlp


def three_stage(threshold: list[float] | None = None) -> tuple[Cascade, torch.Tensor]:
    """original -> pruned to 1/2 and 1/4 of its hidden units; thresholds at the medians of
    the stages' confidences unless given (so every route is taken)."""
    original = mlp(0).eval()
    with torch.no_grad():
        original[2].weight.mul_(6.0)  # confident enough to spread the confidences
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    half = prunekit.prune(original, x[:2], ratio=0.5).model
    quarter = prunekit.prune(original, x[:2], ratio=0.75).model
    if threshold is None:
        with torch.no_grad():
            threshold = [float(confidence(m(x)).median()) for m in (quarter, half)]
    return Cascade([quarter, half, original], threshold=threshold), x


def test_torchscript_matches_eager_row_by_row(tmp_path: Path) -> None:
    cascade, x = three_stage()
    routed = cascade.route(x)
    assert 0 < routed.rows[1] < 64 and routed.rows[2] > 0  # every path is exercised
    report = export_cascade_torchscript(cascade, x, tmp_path / "c.pt")
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-6
    loaded = torch.jit.load(str(tmp_path / "c.pt"))
    with torch.no_grad():
        assert torch.equal(loaded(x), cascade(x))
        other = torch.randn(17, 4)  # another batch size, another mix of routes
        assert torch.equal(loaded(other), cascade(other))


def test_torchscript_with_infinite_threshold_sends_all_to_the_last(tmp_path: Path) -> None:
    cascade, x = three_stage([math.inf, 0.0])
    export_cascade_torchscript(cascade, x, tmp_path / "c.pt")
    loaded = torch.jit.load(str(tmp_path / "c.pt"))
    with torch.no_grad():
        assert torch.equal(loaded(x), cascade.stages[1](x))


def test_torchscript_needs_one_tensor(tmp_path: Path) -> None:
    cascade, x = three_stage()
    with pytest.raises(ExportError, match="takes one tensor"):
        export_cascade_torchscript(cascade, {"x": x}, tmp_path / "c.pt")  # type: ignore[arg-type]


def test_save_load_round_trip_keeps_plans_and_routing(tmp_path: Path) -> None:
    cascade, x = three_stage()
    cascade.calibrate([(x, cascade.stages[2](x).argmax(1))], max_fallback_rate=0.5)
    out = save_cascade(cascade, tmp_path / "cascade")
    meta = json.loads((out / "cascade.json").read_text())
    assert meta["stages"] == ["stage_0", "stage_1", "stage_2"]
    assert meta["calibration"]["thresholds"] == cascade.thresholds
    assert json.loads((out / "stage_0" / "meta.json").read_text())["pruned"] is True
    assert not list(out.rglob("*.pt")) and not list(out.rglob("*.pkl"))  # no pickle
    again = load_cascade(out, lambda: mlp(5))  # any weights: the saved ones are loaded
    assert again.thresholds == cascade.thresholds and again.confidence == cascade.confidence
    assert [s[0].out_features for s in again.stages] == [4, 8, 16]
    with torch.no_grad():
        assert torch.equal(again(x), cascade(x))


def test_load_with_one_factory_per_stage_and_errors(tmp_path: Path) -> None:
    cascade, _ = three_stage()
    out = save_cascade(cascade, tmp_path / "c")
    again = load_cascade(out, [mlp, mlp, mlp])
    assert len(again.stages) == 3
    with pytest.raises(ExportError, match="2 factories for a cascade of 3 stages"):
        load_cascade(out, [mlp, mlp])
    with pytest.raises(ExportError, match="no cascade.json"):
        load_cascade(tmp_path, mlp)
    (out / "cascade.json").write_text("{not json")
    with pytest.raises(ExportError, match="not valid JSON"):
        load_cascade(out, mlp)
