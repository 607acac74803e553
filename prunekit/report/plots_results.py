"""Plots of what the run bought and cost: the trade-off curve, latency, the confusion shift.

Each function writes one PNG into ``out_dir`` and returns its path, or returns ``None``
(writing nothing) when the record lacks the data it needs.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import EngFormatter, PercentFormatter

from .record import RunRecord
from .style import ACCENT, AFTER, BEFORE, PALETTE, ms, new_figure, save_figure, strategy_label

__all__ = ["plot_tradeoff", "plot_latency", "plot_confusion_diff", "is_score"]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def is_score(values: list[float]) -> bool:
    """Whether every value lies in [0, 1] (shown as percent)."""
    return bool(values) and all(0.0 <= v <= 1.0 for v in values)


def plot_tradeoff(record: RunRecord, out_dir: Path, *, x: str = "macs") -> Path | None:
    """``record.metric`` against ``x`` (``"macs"`` or ``"params"``): every candidate each
    strategy's search measured (and its ``curve`` points) as one line per strategy, the
    unpruned model as a star and the chosen point ringed.

    The star is the ``"baseline"`` point of the trade-off when there is one (measured on the
    same split as the candidates, validation for a search), else ``record.baseline``.

    Example:
        >>> import tempfile
        >>> rec = RunRecord(tradeoff=[{"strategy": "l2", "macs": 5e6, "metric": 0.9, "chosen": True}])
        >>> plot_tradeoff(rec, Path(tempfile.mkdtemp())).name
        'tradeoff_macs.png'
    """
    series: dict[str, list[tuple[float, float, bool]]] = defaultdict(list)
    star: tuple[float, float] | None = None
    for point in record.tradeoff:
        px, py = _number(point.get(x)), _number(point.get("metric"))
        if px is None or py is None:
            continue
        if point.get("kind") == "baseline":
            star = (px, py)
            continue
        series[str(point.get("strategy", "points"))].append((px, py, bool(point.get("chosen"))))
    if not series:
        return None
    fig = new_figure(7.2, 4.4)
    ax = fig.add_subplot()
    ys = [p[1] for pts in series.values() for p in pts]
    for i, (strategy, pts) in enumerate(sorted(series.items())):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=PALETTE[i % len(PALETTE)],
                label=f"{strategy_label(strategy)} ({len(pts)} measured)", ms=5, lw=1.6)  # fmt: skip
        for px, py, chosen in pts:
            if chosen:
                ax.plot(px, py, "o", ms=15, mfc="none", mec=ACCENT, mew=2.2, zorder=5)
                ax.annotate("chosen", (px, py), xytext=(10, -14), textcoords="offset points",
                            color=ACCENT, fontsize=9, fontweight="bold")  # fmt: skip
    if star is None:
        bx, by = _number(record.baseline.get(x)), _number(record.baseline.get(record.metric))
        star = (bx, by) if bx is not None and by is not None else None
    if star is not None:
        ax.plot(*star, "*", ms=16, color="#1f2328", label="unpruned", zorder=6)
        ys.append(star[1])
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    if is_score(ys):
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    split = "validation " if any(p.get("kind") == "baseline" for p in record.tradeoff) else ""
    ax.set_xlabel("MACs per forward pass" if x == "macs" else "parameters")
    ax.set_ylabel(f"{split}{record.metric}")
    ax.set_title(f"{split}{record.metric} vs {'MACs' if x == 'macs' else 'parameters'}, "
                 "every candidate measured")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9, framealpha=0.9)
    return save_figure(fig, out_dir / f"tradeoff_{x}.png")


def latency_pairs(record: RunRecord) -> list[tuple[str, float, float]]:
    """``(batch size, before ms, after ms)`` for every batch size both evaluations timed."""
    before = record.baseline.get("latency_ms")
    after = record.pruned.get("latency_ms")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    pairs = []
    for batch in sorted(set(before) & set(after), key=lambda b: (len(str(b)), str(b))):
        b, a = _number(before[batch]), _number(after[batch])
        if b is not None and a is not None and a > 0:
            pairs.append((str(batch), b, a))
    return pairs


def plot_latency(record: RunRecord, out_dir: Path) -> Path | None:
    """Median latency before/after, one panel per batch size, speed-up in each title."""
    pairs = latency_pairs(record)
    if not pairs:
        return None
    fig = new_figure(2.6 * len(pairs) + 0.8, 3.4)
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    for ax, (batch, b, a) in zip(axes, pairs):
        bars = ax.bar(["unpruned", "pruned"], [b, a], color=[BEFORE, AFTER], width=0.6)
        ax.bar_label(bars, labels=[ms(b), ms(a)], fontsize=9, padding=2)
        ax.set_title(f"batch {batch}: {b / a:.2f}x faster", fontsize=11)
        ax.set_ylim(0, max(b, a) * 1.2)
        ax.set_ylabel("median latency (ms)" if ax is axes[0] else "")
        ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, out_dir / "latency.png")


def plot_confusion_diff(record: RunRecord, out_dir: Path) -> Path | None:
    """Heat map of confusion(after) - confusion(before); rows true, columns predicted."""
    try:
        before = np.asarray(record.baseline.get("confusion"), dtype=float)
        after = np.asarray(record.pruned.get("confusion"), dtype=float)
    except (TypeError, ValueError):
        return None
    if before.ndim != 2 or before.shape != after.shape or before.shape[0] != before.shape[1]:
        return None
    diff = after - before
    n = diff.shape[0]
    names = record.class_names if record.class_names and len(record.class_names) == n else None
    labels = names or [str(i) for i in range(n)]
    size = min(max(4.2, 0.4 * n + 2.0), 11.0)
    fig = new_figure(size + 1.0, size)
    ax = fig.add_subplot()
    limit = max(float(np.abs(diff).max()), 1.0)
    image = ax.imshow(diff, cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=ax, shrink=0.8, label="count after - before")
    step = -(-n // 30)  # at most 30 tick labels per axis
    ticks = list(range(0, n, step))
    tilt = max(len(label) for label in labels) > 3
    shown = [labels[i] for i in ticks]
    ax.set_xticks(ticks, shown, rotation=45 if tilt else 0, ha="right" if tilt else "center")
    ax.set_yticks(ticks, shown)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix change (pruned - unpruned)")
    if n <= 15:
        for i in range(n):
            for j in range(n):
                if diff[i, j]:
                    strong = abs(diff[i, j]) > limit * 0.6
                    ax.text(j, i, f"{diff[i, j]:+g}", ha="center", va="center", fontsize=8,
                            color="white" if strong else "#1f2328")  # fmt: skip
    return save_figure(fig, out_dir / "confusion_diff.png")
