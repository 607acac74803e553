"""The report's content: a :class:`RunRecord` and its figures turned into document blocks.

Sections, in order: summary (what it cost and bought), what was done (recipe, steps and
timings), trade-off, where the cut went, speed, where the pruned model newly fails, run
details. A section with no data is left out and named in one closing line.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from .document import Block, Code, Figure, Heading, Table, Text
from .language import language_blocks
from .plots_model import sensitivity_ranking
from .plots_results import is_score
from .record import RunRecord
from .summary import headline, summary_rows

__all__ = ["build_blocks", "NEWLY_WRONG_ROWS"]

NEWLY_WRONG_ROWS = 25
TOP_MISTAKES = 10


def _figure(figures: dict[str, Path], key: str, caption: str) -> list[Block]:
    return [Figure(figures[key], caption)] if key in figures else []


def _summary(record: RunRecord) -> list[Block]:
    blocks: list[Block] = [Heading("Summary: what it cost and what it bought")]
    line = headline(record)
    if line:
        blocks.append(Text(line[0].upper() + line[1:], "lead"))
    rows = summary_rows(record)
    if not rows:
        return blocks + [Text("No evaluation of the unpruned or pruned model was recorded.")]
    split = {"val": "validation", "test": "test"}.get(str(record.meta.get("split", "")), "")
    where = f"Scores on the {split} split. " if split else ""
    spread = _latency_spread(record)
    return blocks + [
        Table(
            ["metric", "unpruned", "pruned", "change"],
            [r.cells() for r in rows],
            f"{where}Scores change in percentage points, costs by the pruned/unpruned ratio, "
            f"latency (median over the timed runs) by its speed-up.{spread}",
            [False, True, True, True],
        )
    ]


def _latency_spread(record: RunRecord) -> str:
    """`` Latency IQR (ms), batch 1: 1.20-1.31 → 0.80-0.85.`` (empty when not recorded)."""
    before, after = record.baseline.get("latency_iqr_ms"), record.pruned.get("latency_iqr_ms")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ""
    parts = [
        f"batch {b}: {before[b][0]:.3f}-{before[b][1]:.3f} → {after[b][0]:.3f}-{after[b][1]:.3f}"
        for b in before
        if b in after and len(before[b]) == 2 and len(after[b]) == 2
    ]
    return f" Latency interquartile range (ms), {'; '.join(parts)}." if parts else ""


def _done(record: RunRecord) -> list[Block]:
    blocks: list[Block] = [Heading("What was done")]
    if record.recipe is not None:
        blocks += [
            Heading("Recipe", 3),
            Code(yaml.safe_dump(record.recipe, sort_keys=False), "yaml"),
        ]
    else:
        blocks.append(Text("No recipe was recorded."))
    if record.timings:
        total = sum(record.timings.values())
        rows = [
            [step, f"{s:.2f}", f"{100 * s / total:.1f}%" if total else "—"]
            for step, s in record.timings.items()
        ]
        rows.append(["total", f"{total:.2f}", "100.0%" if total else "—"])
        blocks += [
            Heading("Steps and timings", 3),
            Table(["step", "seconds", "share"], rows, numeric=[False, True, True]),
        ]
    return blocks


def _cut(record: RunRecord, figures: dict[str, Path]) -> list[Block]:
    blocks: list[Block] = []
    blocks += _figure(figures, "widths", "Output width per layer: grey before, blue after.")
    if record.layer_widths:
        before = sum(b for b, _ in record.layer_widths.values())
        after = sum(a for _, a in record.layer_widths.values())
        changed = sum(1 for b, a in record.layer_widths.values() if a != b)
        blocks.append(
            Text(
                f"{changed} of {len(record.layer_widths)} layers were narrowed; "
                f"{after} of {before} output units kept ({100 * after / max(before, 1):.1f}%)."
            )
        )
    blocks += _figure(figures, "importance", "Importance score distribution per group.")
    blocks += _figure(
        figures, "sensitivity",
        f"{record.metric} when one group alone is cut by the given fraction.",
    )  # fmt: skip
    ranking = sensitivity_ranking(record)
    if ranking:
        values = [m for curve in record.sensitivity.values() for m in curve.values()]
        points = is_score(values)
        rows = [[g, f"{d * 100:.2f} pts" if points else f"{d:.4g}"] for g, d in ranking[:10]]
        blocks.append(
            Table(
                ["group", f"largest {record.metric} drop"],
                rows,
                "Most sensitive groups.",
                [False, True],
            )
        )
    return [Heading("Where the cut went"), *blocks] if blocks else []


def _label(record: RunRecord, value: Any) -> str:
    names = record.class_names
    if isinstance(value, int) and names and 0 <= value < len(names) and names[value] != str(value):
        return f"{value} ({names[value]})"
    return str(value)


def _newly_wrong(record: RunRecord) -> list[Block]:
    wrong = record.newly_wrong
    pairs = Counter(
        (_label(record, w.get("true")), _label(record, w.get("pred_after"))) for w in wrong
    )
    blocks: list[Block] = [
        Text(f"{len(wrong)} examples the unpruned model got right are wrong after pruning."),
        Table(
            ["true", "pruned predicts", "examples"],
            [[t, p, str(n)] for (t, p), n in pairs.most_common(TOP_MISTAKES)],
            "The most frequent new mistakes.",
            [False, False, True],
        ),
    ]
    rows = [
        [
            str(w.get("index", "")),
            *(_label(record, w.get(k)) for k in ("true", "pred_before", "pred_after")),
        ]
        for w in wrong[:NEWLY_WRONG_ROWS]
    ]
    shown = (
        f"The first {NEWLY_WRONG_ROWS} of {len(wrong)}." if len(wrong) > NEWLY_WRONG_ROWS else ""
    )
    header = ["index", "true", "unpruned predicted", "pruned predicted"]
    return blocks + [Table(header, rows, f"Newly wrong examples. {shown}".strip(), [True])]


def _failures(record: RunRecord, figures: dict[str, Path]) -> list[Block]:
    blocks = _newly_wrong(record) if record.newly_wrong else []
    blocks += _figure(
        figures, "confusion",
        "Confusion matrix after minus before. Blue on the diagonal: fewer correct; red off it: "
        "new confusions.",
    )  # fmt: skip
    return [Heading("Where the pruned model newly fails"), *blocks] if blocks else []


def _details(record: RunRecord) -> list[Block]:
    if not record.meta:
        return []
    rows = [
        [str(k), v if isinstance(v, str) else json.dumps(v, default=str)]
        for k, v in record.meta.items()
    ]
    return [Heading("Run details"), Table(["key", "value"], rows)]


def build_blocks(record: RunRecord, figures: dict[str, Path]) -> list[Block]:
    """All report blocks for ``record``; ``figures`` maps figure keys (``tradeoff_macs``,
    ``tradeoff_params``, ``widths``, ``importance``, ``sensitivity``, ``latency``,
    ``confusion``) to the PNGs that were written."""
    blocks: list[Block] = [Text(note, "note") for note in record.notes]
    blocks += _summary(record) + language_blocks(record) + _done(record)
    tradeoff = _figure(
        figures,
        "tradeoff_macs",
        f"{record.metric} vs MACs per strategy; star: unpruned, ring: chosen.",
    )
    tradeoff += _figure(figures, "tradeoff_params", f"{record.metric} vs parameters.")
    blocks += [Heading("Trade-off"), *tradeoff] if tradeoff else []
    blocks += _cut(record, figures)
    latency = _figure(figures, "latency", "Median latency per batch size, same threads and device.")
    blocks += [Heading("Speed"), *latency] if latency else []
    blocks += _failures(record, figures)
    blocks += _details(record)
    missing = [
        name
        for name, present in (
            ("trade-off curve", bool(tradeoff)),
            ("layer widths", "widths" in figures),
            ("importance scores", "importance" in figures),
            ("sensitivity", "sensitivity" in figures),
            ("latency", bool(latency)),
            ("newly-wrong examples", bool(record.newly_wrong)),
            ("confusion matrices", "confusion" in figures),
        )
        if not present
    ]
    if missing:
        blocks.append(Text(f"Not recorded in this run: {', '.join(missing)}."))
    return blocks
