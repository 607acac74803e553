"""The combined LLM benchmark report (benchmarks/llm_report.py) on synthetic rows."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.llm_report import BEGIN, END, goal_lines, load_rows, main, render, update_doc

DENSE = {"family": "dense", "method": "dense", "ppl": 40.0, "rss_over_weights": 2.0}
ROWS: dict[str, list[dict[str, object]]] = {
    "llm_blockwise.jsonl": [
        DENSE,
        {
            "family": "structured",
            "method": "flap",
            "compensation": "bias",
            "ratio": 0.2,
            "block_removed": 0.199,
            "ppl": 52.0,
            "prune_s": 50.0,
            "rss_over_weights": 3.0,
        },
        {
            "family": "structured",
            "method": "wanda_sp",
            "ratio": 0.2,
            "block_removed": 0.2,
            "ppl": 70.0,
        },
        {
            "family": "structured",
            "method": "flap",
            "compensation": "bias",
            "ratio": 0.5,
            "block_removed": 0.5,
            "ppl": 400.0,
        },
        # an old-format row: no family, no ratio (inferred structured, column from block_removed)
        {"method": "magnitude", "block_removed": 0.2001, "ppl": 189711.9},
    ],
    "llm_torch_pruning.jsonl": [
        {
            "family": "torch_pruning",
            "method": "tp_l2_full",
            "config": "full",
            "ratio": 0.2,
            "status": "timeout",
            "phase": "group construction",
            "seconds": 1200.4,
        },
        {
            "family": "torch_pruning",
            "method": "tp_l2_ffn",
            "config": "ffn",
            "ratio": 0.2,
            "block_removed": 0.15,
            "ppl": 66000.0,
            "status": "ok",
        },
    ],
    "llm_sparse.jsonl": [
        {
            "family": "sparse",
            "method": "sparsegpt",
            "pattern": "unstructured",
            "ratio": 0.5,
            "block_removed": 0.5,
            "ppl": 50.0,
        },
        {
            "family": "sparse",
            "method": "wanda",
            "pattern": "2:4",
            "ratio": 0.5,
            "block_removed": 0.5,
            "ppl": 100.0,
        },
    ],
    "llm_scale.jsonl": [
        {"family": "scale", "dtype": "bf16", "prune_s": 45.0, "rss_over_weights": 1.2},
        {"family": "scale", "dtype": "fp32", "prune_s": 80.0, "rss_over_weights": 1.1},
    ],
}


def _write(tmp_path: Path, rows: dict[str, list[dict[str, object]]] = ROWS) -> Path:
    bench = tmp_path / "bench"
    bench.mkdir()
    for name, rs in rows.items():
        lines = [json.dumps(r) for r in rs] + ["not json {"]  # a broken line is skipped
        (bench / name).write_text("\n".join(lines) + "\n")
    return bench


def _goal(lines: list[str], start: str) -> str:
    [line] = [g for g in lines if g.startswith("- " + start)]
    return line


def test_goals_computed_from_rows(tmp_path: Path) -> None:
    rows = load_rows(_write(tmp_path))
    assert len(rows) == 11  # the broken lines are dropped
    md = render(rows)
    goals = goal_lines(rows)  # render() recomputed x_dense from the dense row (40, not 37.92)
    # 52 / 40 = 1.30 <= 1.5
    assert "**met** (best flap · bias: 52.00 = 1.30× dense)" in _goal(goals, "≤ 1.5× dense at 20 %")
    # 52 vs Torch-Pruning's only finished row at 20 % (66000): met, and the timeout is named
    tp = _goal(goals, "≤ 0.5× Torch-Pruning")
    assert "**met**" in tp and "66 000" in tp
    assert "full timeout after 1200 s (group construction)" in tp
    assert "**no data**" in _goal(goals, "≤ 1.25× dense after distillation")
    assert "**met**" in _goal(goals, "50 % unstructured")  # 50 / 40 = 1.25
    assert "**not met**" in _goal(goals, "2:4")  # 100 / 40 = 2.5 > 2
    scale = _goal(goals, "1.1 B")
    assert scale.startswith("- 1.1 B: prune ≤ 60 s and peak RSS ≤ 1.3× weights: **not met**")
    assert "bf16 **met**: 45.0 s, 1.20×" in scale and "fp32 **not met**: 80.0 s" in scale
    assert "dense **40.00**" in md and "from the dense row" in md


def test_tables_show_timeouts_and_ratio_columns(tmp_path: Path) -> None:
    md = render(load_rows(_write(tmp_path)))
    tp_table = md.split("### Torch-Pruning")[1].split("###")[0]
    [full] = [ln for ln in tp_table.splitlines() if ln.startswith("| tp_l2_full")]
    cells = [c.strip() for c in full.strip("|").split("|")]
    # columns: method, 10 %, 20 %, 30 %, 50 %, prune s, RSS
    assert cells[2] == "timeout after 1200 s (group construction)"
    assert cells[1] == cells[3] == cells[4] == "–"
    structured = md.split("### Structured")[1].split("###")[0]
    [flap] = [ln for ln in structured.splitlines() if ln.startswith("| flap · bias")]
    cells = [c.strip() for c in flap.strip("|").split("|")]
    assert cells[2] == "52.00 (1.30×), 19.9 %" and cells[4] == "400.00 (10.00×), 50.0 %"
    assert any(ln.startswith("| magnitude |") and "4 743" in ln for ln in structured.splitlines())
    assert "### Depth" not in md  # no depth rows, no depth table


def test_missing_files_and_dense_fallback(tmp_path: Path) -> None:
    bench = _write(tmp_path, {"llm_sparse.jsonl": ROWS["llm_sparse.jsonl"]})
    rows = load_rows(bench)
    md = render(rows)
    assert "llm_common.DENSE_PPL (no dense row found): 37.92" in md
    assert "**no data**" in _goal(goal_lines(rows), "≤ 1.5× dense at 20 %")
    assert render(load_rows(tmp_path / "nothing-here")).count("**no data**") == 6


def test_update_doc_replaces_only_the_section(tmp_path: Path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nother section\n")
    update_doc(doc, "first")
    assert doc.read_text() == f"# Benchmarks\n\nother section\n\n{BEGIN}\nfirst\n{END}\n"
    doc.write_text(doc.read_text() + "\n## after\n")
    update_doc(doc, "second \\1 text")  # backslashes are not regex escapes
    text = doc.read_text()
    assert f"{BEGIN}\nsecond \\1 text\n{END}" in text and "first" not in text
    assert text.startswith("# Benchmarks\n\nother section\n") and text.endswith("## after\n")


def test_main_writes_doc_and_plot(tmp_path: Path, monkeypatch) -> None:
    bench = _write(tmp_path)
    doc = tmp_path / "BENCHMARKS.md"
    monkeypatch.setattr("sys.argv", ["llm_report", "--bench-dir", str(bench), "--doc", str(doc)])
    main()
    png = bench / "llm_ppl_vs_removed.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![perplexity vs block params removed](bench/llm_ppl_vs_removed.png)" in doc.read_text()
