"""ONNX and TorchScript export of a pruned CNN: files run, match PyTorch, are timed."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ConfigError, ExportError
from prunekit.export import ExportReport, export_onnx, export_torchscript


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16))
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        h = torch.relu(h + self.block(h))
        return self.head(h.mean(dim=(2, 3)))


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(4, 8), nn.Linear(3, 8), nn.Linear(8, 2)

    def forward(self, image: torch.Tensor, meta: torch.Tensor) -> dict[str, torch.Tensor]:
        h = torch.relu(self.a(image) + self.b(meta))
        return {"logits": self.out(h), "hidden": h}


class Noisy(nn.Module):
    """Adds fresh noise on every call: no export can reproduce its outputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


class DataDependent(nn.Module):
    """A Python branch on a tensor value: torch.export refuses it, the tracer records one path."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


FAST = {"warmup": 1, "repeats": 3}


@pytest.fixture(scope="module")
def pruned_cnn() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    model = prunekit.prune(SmallCNN().eval(), x, ratio=0.5).model
    assert model.stem[0].out_channels == 8
    return model, x


def test_onnx_export_of_pruned_cnn(
    pruned_cnn: tuple[nn.Module, torch.Tensor], tmp_path: Path
) -> None:
    model, x = pruned_cnn
    report = export_onnx(model, x, tmp_path / "cnn.onnx", **FAST)
    assert report.format == "onnx" and report.exporter == "dynamo"
    assert report.opset is not None and report.opset >= 18
    assert report.bytes == (tmp_path / "cnn.onnx").stat().st_size > 0
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-4
    assert report.max_rel_diff is not None and report.max_rel_diff < 1e-3
    assert report.torch_latency_ms is not None and report.torch_latency_ms > 0
    assert report.export_latency_ms is not None and report.export_latency_ms > 0
    assert "batch 2 and 4" in report.notes
    assert json.loads(json.dumps(report.to_dict()))["path"] == str(tmp_path / "cnn.onnx")
    session = ort.InferenceSession(str(tmp_path / "cnn.onnx"), providers=["CPUExecutionProvider"])
    x5 = torch.randn(5, 3, 8, 8)  # the batch dimension is dynamic
    (got,) = session.run(None, {session.get_inputs()[0].name: x5.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x5).numpy(), rtol=1e-3, atol=1e-4)


def test_onnx_dict_inputs_fixed_batch_unchecked(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TwoInputs().train()
    inputs = {"meta": torch.randn(3, 3), "image": torch.randn(3, 4)}  # not signature order
    report = export_onnx(
        model, inputs, tmp_path / "two.onnx", opset=18, dynamic_batch=False, check=False,
        latency=False,
    )  # fmt: skip
    assert report.opset == 18
    assert model.training and model.a.training  # training flags restored
    assert report.max_abs_diff is None and report.torch_latency_ms is None and report.notes == ""
    session = ort.InferenceSession(str(tmp_path / "two.onnx"), providers=["CPUExecutionProvider"])
    assert {i.name: i.shape for i in session.get_inputs()} == {"image": [3, 4], "meta": [3, 3]}
    logits, hidden = session.run(None, {k: v.numpy() for k, v in inputs.items()})
    with torch.no_grad():
        expected = model.eval()(**inputs)
    np.testing.assert_allclose(logits, expected["logits"].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hidden, expected["hidden"].numpy(), rtol=1e-4, atol=1e-5)


def test_onnx_falls_back_when_dynamo_fails(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript tracer warns about the branch
        report = export_onnx(DataDependent(), torch.ones(2, 4), tmp_path / "dd.onnx", latency=False)
    assert report.exporter == "torchscript"
    assert report.notes.startswith("dynamo exporter failed")
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-5
    with pytest.raises(ExportError, match="pass exporter='auto' to fall back"):
        export_onnx(DataDependent(), torch.ones(2, 4), tmp_path / "d2.onnx", exporter="dynamo")
    with pytest.raises(ConfigError, match=r"exporter='jit' is unknown; use one of \('auto'"):
        export_onnx(DataDependent(), torch.ones(2, 4), tmp_path / "d3.onnx", exporter="jit")


def test_onnx_mismatch_raises(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"output 0 differs from PyTorch at \d+ of 8 elements"):
        export_onnx(Noisy(), torch.zeros(2, 4), tmp_path / "noisy.onnx", latency=False)


def test_torchscript_export_of_pruned_cnn(
    pruned_cnn: tuple[nn.Module, torch.Tensor], tmp_path: Path
) -> None:
    model, x = pruned_cnn
    report = export_torchscript(model, x, tmp_path / "cnn.pt", **FAST)
    assert (report.format, report.exporter) == ("torchscript", "jit.trace")
    assert report.bytes == (tmp_path / "cnn.pt").stat().st_size > 0
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-5
    assert report.speedup is not None and report.speedup > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(tmp_path / "cnn.pt"))
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_torchscript_dict_inputs_and_mismatch(tmp_path: Path) -> None:
    inputs = {"image": torch.randn(2, 4), "meta": torch.randn(2, 3)}
    report = export_torchscript(TwoInputs(), inputs, tmp_path / "two.pt", latency=False)
    assert report.max_abs_diff == 0.0
    with pytest.raises(ExportError, match="TorchScript module output 0 differs"):
        export_torchscript(Noisy(), torch.zeros(2, 4), tmp_path / "noisy.pt", latency=False)


def test_export_report_speedup() -> None:
    report = ExportReport(
        "onnx", "m.onnx", 10, "dynamo", torch_latency_ms=3.0, export_latency_ms=1.5
    )
    assert report.speedup == 2.0
    assert ExportReport("onnx", "m.onnx", 10, "dynamo").speedup is None
