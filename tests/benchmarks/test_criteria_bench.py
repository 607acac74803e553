"""The criterion benchmark (benchmarks/criteria.py) on a tiny task: every criterion gives a
row per ratio, the tables render between their markers, and the rest of the doc stays."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from benchmarks import criteria as bench


def tiny_task() -> bench.Task:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(96, 4), torch.randint(0, 3, (96,))
    return bench.Task("tiny-s0", net.eval(), [(x[:16], y[:16]), (x[16:32], y[16:32])],
                      [(x[32:48], y[32:48])], [(x[48:], y[48:])], x[:2])  # fmt: skip


def test_every_criterion_gives_one_row_per_ratio_and_renders(tmp_path: Path) -> None:
    rows = bench.run_task(tiny_task(), seeds=2, tp_crit=("l2",), log=lambda _: None)
    labels = {r["criterion"] for r in rows}
    assert set(bench.criteria([])) | {"random", "tp:l2"} == labels
    for label in labels:
        per = [r for r in rows if r["criterion"] == label]
        assert {r["ratio"] for r in per} == set(bench.RATIOS)
        assert all(0.0 <= r["acc"] <= 100.0 for r in per)
    driven = [r for r in rows if r["calibration"] in ("held-out", "train")
              and not r["criterion"].startswith("tp:")]  # fmt: skip
    assert driven and all(r["cost_vs_taylor"] > 0 for r in driven)
    assert len([r for r in rows if r["criterion"] == "random"]) == 2 * len(bench.RATIOS)
    doc = tmp_path / "B.md"
    doc.write_text(f"# top\n\n{bench.BEGIN}\nold\n{bench.END}\n\ntail\n")
    bench.render(rows, doc, "python -m benchmarks.criteria")
    text = doc.read_text()
    assert text.startswith("# top") and text.rstrip().endswith("tail") and "old" not in text
    assert "### tiny" in text and "| random | none |" in text and "At 50%: random mean" in text
