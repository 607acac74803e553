"""Plots of where the cut went: kept widths, importance distributions, sensitivity curves.

Each function writes one PNG into ``out_dir`` and returns its path, or returns ``None``
(writing nothing) when the record lacks the data it needs.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from matplotlib.ticker import PercentFormatter

from .plots_results import is_score
from .record import RunRecord
from .style import AFTER, BEFORE, PALETTE, group_label, new_figure, save_figure, shorten

__all__ = ["plot_widths", "plot_importance", "plot_sensitivity", "sensitivity_ranking"]


def plot_widths(record: RunRecord, out_dir: Path, *, top: int = 40) -> Path | None:
    """Horizontal bars of each layer's width before (grey) and after (blue), in model order.

    With more than ``top`` layers only the ``top`` most reduced (by kept fraction) are shown.

    Example:
        >>> import tempfile
        >>> rec = RunRecord(layer_widths={"conv1": (16, 8), "fc": (10, 10)})
        >>> plot_widths(rec, Path(tempfile.mkdtemp())).name
        'widths.png'
    """
    items = [(k, b, a) for k, (b, a) in record.layer_widths.items() if b > 0]
    if not items:
        return None
    title = "Kept width per layer"
    if len(items) > top:
        keep = set(sorted(items, key=lambda t: t[2] / t[1])[:top])
        items = [t for t in items if t in keep]
        title += f" ({top} most reduced of {len(record.layer_widths)})"
    fig = new_figure(7.6, 0.26 * len(items) + 1.3)
    ax = fig.add_subplot()
    ys = list(range(len(items)))[::-1]
    ax.barh(ys, [b for _, b, _ in items], color=BEFORE, height=0.75, label="before")
    ax.barh(ys, [a for _, _, a in items], color=AFTER, height=0.75, label="after")
    widest = max(b for _, b, _ in items)
    for y, (_, b, a) in zip(ys, items):
        ax.text(b + widest * 0.01, y, f"{a}/{b}", va="center", fontsize=8, color="#57606a")
    ax.set_yticks(ys, [shorten(k) for k, _, _ in items], fontsize=8)
    ax.set_xlim(0, widest * 1.16)
    ax.set_ylim(-0.6, len(items) - 0.4)
    ax.set_xlabel("output width (units)")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, out_dir / "widths.png")


def plot_importance(record: RunRecord, out_dir: Path, *, top: int = 12) -> Path | None:
    """Box plots of each group's importance scores.

    With more than ``top`` groups the ``top`` with the lowest median score (the first a
    global threshold reaches) are shown. The axis is logarithmic when all scores are
    positive and span more than three decades.
    """
    groups = [(k, v) for k, v in record.importance.items() if v]
    if not groups:
        return None
    title = "Importance scores per group"
    if len(groups) > top:
        groups = sorted(groups, key=lambda kv: statistics.median(kv[1]))[:top]
        title += f" ({top} lowest medians of {len(record.importance)})"
    fig = new_figure(7.6, 0.38 * len(groups) + 1.4)
    ax = fig.add_subplot()
    parts = ax.boxplot(
        [v for _, v in groups][::-1], orientation="horizontal", widths=0.6, patch_artist=True,
        flierprops={"marker": ".", "markersize": 3, "alpha": 0.5},
        medianprops={"color": "#1f2328"},
    )  # fmt: skip
    for box in parts["boxes"]:
        box.set(facecolor=AFTER, alpha=0.35, edgecolor=AFTER)
    ax.set_yticks(range(1, len(groups) + 1), [group_label(k) for k, _ in groups][::-1], fontsize=8)
    scores = [s for _, v in groups for s in v]
    if min(scores) > 0 and max(scores) / min(scores) > 1e3:
        ax.set_xscale("log")
    ax.set_xlabel("importance score per unit")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, out_dir / "importance.png")


def sensitivity_ranking(record: RunRecord) -> list[tuple[str, float]]:
    """Groups by sensitivity, most sensitive first: the largest drop of the metric below
    the unpruned value (below the group's own best value when there is no baseline).

    Example:
        >>> rec = RunRecord(baseline={"accuracy": 0.9},
        ...                 sensitivity={"a": {0.5: 0.85}, "b": {0.5: 0.4}})
        >>> [(g, round(d, 2)) for g, d in sensitivity_ranking(rec)]
        [('b', 0.5), ('a', 0.05)]
    """
    reference = record.baseline.get(record.metric)
    ranking = []
    for group, curve in record.sensitivity.items():
        if not curve:
            continue
        top = float(reference) if isinstance(reference, (int, float)) else max(curve.values())
        ranking.append((group, top - min(curve.values())))
    return sorted(ranking, key=lambda t: -t[1])


def plot_sensitivity(record: RunRecord, out_dir: Path, *, top: int = 8) -> Path | None:
    """``record.metric`` against the pruning ratio of each group alone, for the ``top`` most
    sensitive groups, with the unpruned value as a dashed line."""
    ranking = sensitivity_ranking(record)[:top]
    if not ranking:
        return None
    fig = new_figure(8.4, 4.4)
    ax = fig.add_subplot()
    values: list[float] = []
    for i, (group, _) in enumerate(ranking):
        curve = sorted(record.sensitivity[group].items())
        values += [m for _, m in curve]
        ax.plot([r for r, _ in curve], [m for _, m in curve], "o-", ms=4, lw=1.5,
                color=PALETTE[i % len(PALETTE)], label=group_label(group, 34))  # fmt: skip
    reference = record.baseline.get(record.metric)
    if isinstance(reference, (int, float)):
        ax.axhline(float(reference), ls="--", color="#57606a", lw=1, label="unpruned")
        values.append(float(reference))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    if is_score(values):
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("fraction of the group's units cut")
    ax.set_ylabel(record.metric)
    shown = f"{len(ranking)} most sensitive of {len(record.sensitivity)}"
    ax.set_title(f"Sensitivity: each group pruned alone ({shown})")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return save_figure(fig, out_dir / "sensitivity.png")
