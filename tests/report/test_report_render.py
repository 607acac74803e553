"""write_report: every plot, a self-contained HTML page, Markdown with working links."""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path

import pytest

from prunekit.errors import ConfigError
from prunekit.report import (
    RunRecord,
    load_record,
    plot_confusion_diff,
    plot_importance,
    plot_latency,
    plot_sensitivity,
    plot_tradeoff,
    plot_widths,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = [
    "confusion_diff.png",
    "importance.png",
    "latency.png",
    "sensitivity.png",
    "tradeoff_macs.png",
    "tradeoff_params.png",
    "widths.png",
]


def complete_record() -> RunRecord:
    """Made-up numbers for every part of a record (the renderer is under test)."""
    return RunRecord(
        title="Synthetic run <b>",
        recipe={"model": "cnn", "prune": {"importance": "l2", "ratio": 0.5}},
        baseline={
            "accuracy": 0.9412,
            "macro_f1": 0.9377,
            "params": 1_200_000,
            "macs": 48_000_000,
            "bytes": 4_800_000,
            "latency_ms": {1: 2.0, 64: 40.0},
            "confusion": [[50, 2, 0], [1, 45, 4], [0, 3, 47]],
        },
        pruned={
            "accuracy": 0.9205,
            "macro_f1": 0.9150,
            "params": 450_000,
            "macs": 18_000_000,
            "bytes": 1_800_000,
            "latency_ms": {1: 1.25, 64: 16.0},
            "confusion": [[49, 3, 0], [2, 42, 6], [0, 4, 46]],
        },
        layer_widths={"features.0": (32, 16), "features.3": (64, 40), "classifier": (3, 3)},
        importance={"features.0:0": [0.1, 0.5, 0.7, 1.2], "features.3:0": [2.0, 2.5, 3.1]},
        sensitivity={
            "features.0:0": {0.2: 0.93, 0.5: 0.85, 0.8: 0.6},
            "features.3:0": {0.2: 0.94, 0.5: 0.93, 0.8: 0.9},
        },
        tradeoff=[
            {"strategy": "l2", "macs": 30e6, "params": 8e5, "metric": 0.935, "chosen": False},
            {"strategy": "l2", "macs": 18e6, "params": 4.5e5, "metric": 0.9205, "chosen": True},
            {"strategy": "random", "macs": 18e6, "params": 4.5e5, "metric": 0.88, "chosen": False},
        ],
        timings={"score": 1.5, "prune": 0.5, "fine-tune": 8.0},
        newly_wrong=[
            {"index": 17, "true": 1, "pred_before": 1, "pred_after": 2},
            {"index": 42, "true": 1, "pred_before": 1, "pred_after": 2},
            {"index": 99, "true": 0, "pred_before": 0, "pred_after": 1},
        ],
        class_names=["cat", "dog", "fox"],
        notes=["made-up numbers"],
        meta={"seed": 0},
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(complete_record(), tmp_path_factory.mktemp("report") / "run")


def png_size(path: Path) -> tuple[int, int]:
    raw = path.read_bytes()
    assert raw[:8] == PNG_MAGIC and raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    return width, height


def test_every_plot_is_a_valid_png(rendered: Path) -> None:
    out = rendered.parent
    assert sorted(p.name for p in out.glob("*.png")) == FIGURES
    for name in FIGURES:
        width, height = png_size(out / name)
        assert width >= 300 and height >= 200, name
    assert sorted(p.name for p in out.iterdir() if p.suffix != ".png") == [
        "metrics.json",
        "record.json",
        "report.html",
        "report.md",
    ]


def test_html_is_self_contained_and_holds_the_numbers(rendered: Path) -> None:
    page = rendered.read_text(encoding="utf-8")
    for name in FIGURES:  # each figure is embedded byte for byte
        data = base64.b64encode((rendered.parent / name).read_bytes()).decode("ascii")
        assert f'src="data:image/png;base64,{data}"' in page
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page
    assert re.findall(r'src="(?!data:)', page) == []
    assert "<title>Synthetic run &lt;b&gt;</title>" in page  # escaped
    # Summary: 94.12% -> 92.05% is -2.07 points; 450k/1.2M params = 0.375x; 2.0/1.25 = 1.60x.
    for text in ("94.12%", "92.05%", "-2.07 pts", "1.2M", "450k", "0.375x (-62.5%)"):
        assert text in page, text
    assert "1.60x faster" in page and "2.50x faster" in page  # 40 / 16 at batch 64
    assert "a drop of 2.07 points" in page
    assert "importance: l2" in page  # recipe YAML block
    assert "1 (dog)" in page and "2 (fox)" in page  # newly-wrong table with class names
    assert '<td>1 (dog)</td><td>2 (fox)</td><td class="num">2</td>' in page  # top mistake


def test_markdown_has_the_same_content_and_links_resolve(rendered: Path) -> None:
    md = (rendered.parent / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(links) == FIGURES
    assert all((rendered.parent / link).is_file() for link in links)
    assert "| accuracy | 94.12% | 92.05% | -2.07 pts |" in md
    assert "```yaml\nmodel: cnn\n" in md
    assert "http" not in md


def test_metrics_json_and_record_round_trip(rendered: Path) -> None:
    metrics = json.loads((rendered.parent / "metrics.json").read_text())
    assert metrics["accuracy_drop_points"] == pytest.approx(2.07)
    rows = {r["metric"]: r for r in metrics["summary"]}
    assert rows["params"]["change"] == pytest.approx(0.375)
    assert rows["latency, batch 64"]["change"] == pytest.approx(2.5)
    assert load_record(rendered.parent) == complete_record()


def test_record_missing_optional_parts_still_renders(tmp_path: Path) -> None:
    rec = RunRecord("bare", baseline={"accuracy": 0.8}, pruned={"accuracy": 0.79})
    page = write_report(rec, tmp_path).read_text(encoding="utf-8")
    assert list(tmp_path.glob("*.png")) == []
    assert "80.00%" in page and "-1.00 pts" in page
    assert "No recipe was recorded." in page
    assert "Not recorded in this run: trade-off curve, layer widths" in page
    empty = write_report(RunRecord(), tmp_path / "empty").read_text(encoding="utf-8")
    assert "No evaluation of the unpruned or pruned model was recorded." in empty


def test_rewrite_removes_stale_figures(tmp_path: Path) -> None:
    write_report(RunRecord(layer_widths={"fc": (4, 2)}, importance={"g": [1.0, 2.0]}), tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["importance.png", "widths.png"]
    write_report(RunRecord(layer_widths={"fc": (4, 2)}), tmp_path)
    assert [p.name for p in tmp_path.glob("*.png")] == ["widths.png"]


def test_each_plot_skips_absent_or_unusable_data(tmp_path: Path) -> None:
    partial = RunRecord(
        baseline={"confusion": [[1, 2, 3]], "latency_ms": {1: 2.0}},
        pruned={"confusion": [[1, 2, 3]]},
        tradeoff=[{"strategy": "l2", "metric": 0.5}],  # no MACs / params
        importance={"g": []},
        sensitivity={"g": {}},
        layer_widths={"empty": (0, 0)},
    )
    for plot in (plot_widths, plot_importance, plot_sensitivity, plot_latency, plot_confusion_diff):
        assert plot(partial, tmp_path) is None, plot.__name__
    assert plot_tradeoff(partial, tmp_path, x="macs") is None
    assert list(tmp_path.iterdir()) == []


def test_large_records_show_the_top_entries(tmp_path: Path) -> None:
    rec = RunRecord(
        layer_widths={f"layer{i}": (10, 10 - i % 10) for i in range(50)},
        importance={f"g{i}": [float(i), float(i) + 1.0] for i in range(20)},
        sensitivity={f"g{i}": {0.5: 0.9 - 0.01 * i} for i in range(20)},
    )
    widths = plot_widths(rec, tmp_path, top=5)
    assert widths is not None and png_size(widths)[1] < 400  # 5 bars: (0.26 * 5 + 1.3) in * 110 dpi
    assert plot_importance(rec, tmp_path, top=3) is not None
    assert plot_sensitivity(rec, tmp_path, top=3) is not None


def test_write_report_rejects_bad_targets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a RunRecord"):
        write_report({"title": "x"}, tmp_path)  # type: ignore[arg-type]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is an existing file"):
        write_report(RunRecord(), tmp_path / "file")
    with pytest.raises(ConfigError, match="no record.json"):
        load_record(tmp_path / "nowhere")
