"""Output that says what it measured: no profiler noise, no "0 samples" BN line, labelled
splits, latency with its spread, export timings with what they cover, the search's curve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prunekit.cli.output import Output
from prunekit.cli.show import export_rows, show_run
from prunekit.evaluation import measure_latency
from prunekit.evaluation._runtime import native_noise_filtered
from prunekit.export import ExportReport
from prunekit.pipeline import run
from prunekit.recipe import parse_recipe
from prunekit.report import RunRecord, plot_tradeoff
from prunekit.report.style import group_label, strategy_label

MLP = """\
model: {name: mlp, kwargs: {hidden: [16]}}
data: {name: iris}
train: {epochs: 2, cache: false}
prune: {ratio: 0.5}
evaluation: {batch_sizes: [1], runs: 5}
output: {save_model: false}
"""


def test_regression_profiler_lines_are_silenced_on_the_evaluation_path() -> None:
    code = (
        "import torch\n"
        "from torch.utils.data import TensorDataset\n"
        "from prunekit.evaluation import evaluate\n"
        "data = TensorDataset(torch.randn(20, 4), torch.randint(0, 3, (20,)))\n"
        "rep = evaluate(torch.nn.Linear(4, 3), data, memory=True, latency=True, runs=2,\n"
        "               warmup=1, batch_sizes=(1, 4))\n"
        "print(rep.cost.memory[0].peak_bytes is not None)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "True"
    assert "profiler_start" not in out.stderr and "profiler_stop" not in out.stderr, out.stderr


def test_native_noise_filter_keeps_other_stderr_lines(capfd: pytest.CaptureFixture[str]) -> None:
    with native_noise_filtered():
        os.write(2, b"USDT:x SyncActivityProfilerHandler.cpp:52] profiler_start\n")
        os.write(2, b"a real warning\n")
    err = capfd.readouterr().err
    assert "a real warning" in err and "profiler_start" not in err


def test_regression_no_batchnorm_says_so_not_zero_samples(tmp_path: Path) -> None:
    lines: list[str] = []
    run(parse_recipe(MLP), out_dir=tmp_path / "run", progress=False, log=lines.append)
    cut_line = next(line for line in lines if line.startswith("cut:"))
    assert "no BatchNorm layers" in cut_line and "0 samples" not in cut_line
    assert cut_line.startswith("cut: test accuracy")


def test_run_summary_labels_the_split_and_shows_latency_spread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(parse_recipe(MLP), out_dir=tmp_path / "run", progress=False)
    q1, q3 = result.pruned["latency_iqr_ms"]["1"]
    assert q1 <= result.pruned["latency_ms"]["1"] <= q3
    show_run(Output(), result)
    err = " ".join(capsys.readouterr().err.split())
    assert "test accuracy" in err and "accuracy on the test split" in err
    assert "(IQR " in err and "median (IQR) of the timed runs" in err
    html = (tmp_path / "run" / "report.md").read_text()
    assert "Scores on the test split" in html and "Latency interquartile range" in html


def test_latency_report_has_quartiles() -> None:
    rep = measure_latency(torch.nn.Linear(8, 2), torch.zeros(1, 8), warmup=1, runs=9)
    assert rep.min_ms <= rep.q1_ms <= rep.median_ms <= rep.q3_ms <= rep.max_ms
    assert rep.iqr_ms >= 0 and "IQR" in rep.summary()


def test_export_latencies_say_what_each_one_timed() -> None:
    rep = ExportReport("onnx", "m.onnx", 10, "dynamo", 1e-7, 1e-7, 15.0, 0.115, threads=1)
    rows, caveat = export_rows(rep, "onnx")
    assert ["PyTorch eager latency", "15.000 ms"] in rows
    assert (
        "onnxruntime InferenceSession.run" in caveat and "model(x) under inference_mode" in caveat
    )
    assert "1 thread(s)" in caveat and "same example batch" in caveat


SEARCH = """\
model: {name: mlp, kwargs: {hidden: [32]}}
data: {name: iris}
train: {epochs: 3, cache: false}
search:
  budget: {macs: 0.5}
  strategies: [{importance: l2, scope: global}, {importance: l1, scope: local}]
  steps: 3
  curve: [0.25, 0.75]
evaluation: {latency: false}
output: {save_model: false}
"""


def test_regression_tradeoff_has_every_strategys_curve(tmp_path: Path) -> None:
    result = run(parse_recipe(SEARCH), mode="search", out_dir=tmp_path / "run", progress=False)
    record = RunRecord.from_json((tmp_path / "run" / "record.json").read_text())
    by_strategy: dict[str, list[dict]] = {}
    for point in record.tradeoff:
        by_strategy.setdefault(point["strategy"], []).append(point)
    assert set(by_strategy) == {"l2-global", "l1-local", "unpruned"}
    for name in ("l2-global", "l1-local"):
        kinds = sorted(p["kind"] for p in by_strategy[name])
        assert kinds.count("curve") == 2 and "search" in kinds, by_strategy[name]
        assert len({p["macs"] for p in by_strategy[name]}) >= 3
    assert sum(p["chosen"] for p in record.tradeoff) == 1
    assert by_strategy["unpruned"][0]["macs"] == result.baseline["macs"]
    assert plot_tradeoff(record, tmp_path) is not None


def test_legend_names_are_readable() -> None:
    assert strategy_label("taylor-global") == "taylor, ranked across layers"
    assert strategy_label("l2-local") == "l2, same ratio per layer"
    assert group_label("features.3.weight:0") == "features.3 (output units)"
    assert group_label("pos:2") == "pos:2"
