"""The before/after summary: which numbers changed by how much, as rows and one sentence.

Scores in [0, 1] (accuracy, F1, ...) change in percentage points; costs (params, MACs,
bytes) by their after/before ratio; latency by its speed-up; any other number by its
difference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .plots_results import latency_pairs
from .record import RunRecord
from .style import human, ms

__all__ = ["SummaryRow", "summary_rows", "headline", "COST_KEYS"]

COST_KEYS = ("params", "macs", "flops", "bytes")
LOWER_IS_BETTER = ("perplexity", "loss", "nll", "ece")
"""Primary metrics where an increase is a loss: the headline says rise/fall, not gain/drop."""
SCORE_WORDS = ("acc", "f1", "precision", "recall", "agreement", "auc", "iou", "map", "top")
_SKIP = {"latency_ms", "latency_iqr_ms", "latency_threads", "confusion"}
_LABELS = {"macs": "MACs", "flops": "FLOPs", "macro_f1": "macro F1", "params": "parameters"}


@dataclass
class SummaryRow:
    """One line of the summary table (raw numbers; ``None`` where not measured)."""

    metric: str
    kind: str  # "score", "cost", "latency" or "value"
    before: float | None
    after: float | None

    @property
    def change(self) -> float | None:
        """Points for scores, after/before for costs, speed-up for latency, else after-before."""
        if self.before is None or self.after is None:
            return None
        if self.kind == "score":
            return (self.after - self.before) * 100.0
        if self.kind == "cost":
            return self.after / self.before if self.before else None
        if self.kind == "latency":
            return self.before / self.after if self.after else None
        return self.after - self.before

    def cells(self) -> list[str]:
        """``[metric, before, after, change]`` as display strings."""
        label = _LABELS.get(self.metric, self.metric)
        return [label, self._show(self.before), self._show(self.after), self._show_change()]

    def _show(self, value: float | None) -> str:
        if value is None:
            return "—"
        if self.kind == "score":
            return f"{value * 100:.2f}%"
        if self.kind == "cost":
            return human(value)
        if self.kind == "latency":
            return ms(value)
        return f"{value:.4g}"

    def _show_change(self) -> str:
        change = self.change
        if change is None:
            return "—"
        if self.kind == "score":
            return f"{change:+.2f} pts"
        if self.kind == "cost":
            return f"{change:.3f}x ({(change - 1) * 100:+.1f}%)"
        if self.kind == "latency":
            return f"{change:.2f}x faster" if change >= 1 else f"{1 / change:.2f}x slower"
        return f"{change:+.4g}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "change": self.change}


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _kind(name: str, before: float | None, after: float | None) -> str:
    """A cost by name; a score when its name says so and its values lie in [0, 1]."""
    if name in COST_KEYS:
        return "cost"
    values = [v for v in (before, after) if v is not None]
    named = any(word in name.lower() for word in SCORE_WORDS)
    return "score" if named and all(0.0 <= v <= 1.0 for v in values) else "value"


def summary_rows(record: RunRecord) -> list[SummaryRow]:
    """Rows for every number either evaluation has: the primary metric first, then other
    scores, costs, latency per batch size, and the rest.

    Example:
        >>> rec = RunRecord(baseline={"accuracy": 0.9, "params": 1000},
        ...                 pruned={"accuracy": 0.88, "params": 400})
        >>> [r.cells() for r in summary_rows(rec)]
        [['accuracy', '90.00%', '88.00%', '-2.00 pts'], ['parameters', '1k', '400', '0.400x (-60.0%)']]
    """
    names = [k for k in dict.fromkeys([*record.baseline, *record.pruned]) if k not in _SKIP]
    rows = []
    for name in names:
        before, after = _scalar(record.baseline.get(name)), _scalar(record.pruned.get(name))
        if before is not None or after is not None:
            rows.append(SummaryRow(name, _kind(name, before, after), before, after))
    order = {"score": 1, "cost": 2, "value": 4}
    rows.sort(key=lambda r: 0 if r.metric == record.metric else order[r.kind])
    latency = [
        SummaryRow(f"latency, batch {b}", "latency", x, y) for b, x, y in latency_pairs(record)
    ]
    cut = sum(1 for r in rows if r.kind != "value")
    return rows[:cut] + latency + rows[cut:]


def headline(record: RunRecord) -> str:
    """One sentence: what the primary metric did and what the model gained.

    Example:
        >>> headline(RunRecord(baseline={"accuracy": 0.9, "macs": 100, "latency_ms": {1: 2.0}},
        ...                    pruned={"accuracy": 0.88, "macs": 40, "latency_ms": {1: 1.0}}))
        'accuracy 90.00% → 88.00% (a drop of 2.00 points); MACs 0.400x; 2.00x faster at batch 1.'
    """
    parts, speed = [], []
    for row in summary_rows(record):
        change, cells = row.change, row.cells()
        if change is None:
            continue
        if row.metric == record.metric:
            up, down = ("rise", "fall") if row.metric in LOWER_IS_BETTER else ("gain", "drop")
            word = down if change <= 0 else up
            amount = f"{abs(change):.2f} points" if row.kind == "score" else f"{abs(change):.4g}"
            parts.append(f"{cells[0]} {cells[1]} → {cells[2]} (a {word} of {amount})")
        elif row.kind == "cost":
            parts.append(f"{cells[0]} {change:.3f}x")
        elif row.kind == "latency":
            speed.append(f"{cells[3]} at batch {row.metric.rsplit(' ', 1)[-1]}")
    if speed:
        parts.append(", ".join(speed))
    return "; ".join(parts) + "." if parts else ""
