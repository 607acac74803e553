"""Before/after comparison of two evaluation reports, and its plain-text table.

Quality metrics change by a *difference*: fractions (accuracy, F1, calibration error ...) in
percentage points (``after - before``, times 100; ``-1.5`` means 1.5 points lower), other
values (loss, MAE, R² ...) as a plain ``after - before``. Costs change by a *factor*:
``before / after`` for what should shrink (params, MACs, bytes, memory, latency: ``4.0×``
means four times smaller or faster) and ``after / before`` for throughput.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from prunekit.errors import ConfigError
from prunekit.evaluation.cost_profile import CostComparison, CostProfile, compare_cost, ratio
from prunekit.evaluation.suite import EvaluationReport

__all__ = ["Comparison", "ComparisonRow", "compare", "format_table"]

_FRACTIONS = {
    "classification": (
        "accuracy", "f1_macro", "precision_macro", "recall_macro", "f1_weighted",
        "mean_confidence", "ece",
    ),
    "regression": (),
    "embedding": (),
}  # fmt: skip
_VALUES = {
    "classification": ("loss",),
    "regression": ("mae", "mse", "rmse", "r2"),
    "embedding": ("mean", "min"),
}
_LABELS = {"mean": "cosine mean", "min": "cosine min"}  # embedding fidelity


@dataclass(frozen=True)
class ComparisonRow:
    """One metric before and after.

    Attributes:
        metric: Name, e.g. ``"accuracy"`` or ``"latency median @64"``.
        unit: ``"fraction"``, ``"value"``, ``"count"``, ``"bytes"``, ``"ms"`` or ``"samples/s"``.
        before, after: The two values (``None`` when one report lacks it).
        change: ``after - before`` in points (``"points"``), plain (``"delta"``), or a
            reduction/gain factor (``"ratio"``); ``None`` when undefined.
        change_kind: ``"points"``, ``"delta"`` or ``"ratio"``.

    Example:
        >>> ComparisonRow("accuracy", "fraction", 0.9, 0.88, -2.0, "points").to_dict()["change"]
        -2.0
    """

    metric: str
    unit: str
    before: float | None
    after: float | None
    change: float | None
    change_kind: str

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict``."""
        return asdict(self)


@dataclass
class Comparison:
    """Deltas and ratios between two :class:`EvaluationReport` of the same task.

    Attributes:
        task: The task of both reports.
        rows: One row per metric, quality first, then cost.
        cost: Reduction factors of the cost profiles (``None`` unless both were measured).
        agreement: Top-1 agreement of the ``after`` model with its reference, if measured.
        newly_wrong, newly_right: Counts of flipped inputs of the ``after`` model, if measured.

    Example:
        >>> from prunekit.evaluation.regression import regression_quality
        >>> a = EvaluationReport("regression", 2, regression_quality([1.0, 2.0], [1.0, 3.0]))
        >>> b = EvaluationReport("regression", 2, regression_quality([1.0, 2.0], [1.0, 2.0]))
        >>> compare(a, b).row("mae").change
        -0.5
    """

    task: str
    rows: list[ComparisonRow] = field(default_factory=list)
    cost: CostComparison | None = None
    agreement: float | None = None
    newly_wrong: int | None = None
    newly_right: int | None = None

    def row(self, metric: str) -> ComparisonRow:
        """The row of ``metric``; raises :class:`ConfigError` listing the metrics if absent."""
        for row in self.rows:
            if row.metric == metric:
                return row
        raise ConfigError(f"no metric {metric!r} in this comparison; have {self.metrics}")

    @property
    def metrics(self) -> list[str]:
        """Names of all rows, in order."""
        return [row.metric for row in self.rows]

    @property
    def accuracy_drop_points(self) -> float | None:
        """``(before - after) * 100`` of top-1 accuracy (positive: accuracy dropped)."""
        change = self._change("accuracy")
        return None if change is None else -change

    @property
    def macs_reduction(self) -> float | None:
        """``before / after`` of MACs per sample."""
        return None if self.cost is None else self.cost.macs

    @property
    def params_reduction(self) -> float | None:
        """``before / after`` of parameters."""
        return None if self.cost is None else self.cost.params

    @property
    def speedup(self) -> dict[int, float | None]:
        """``{batch_size: before / after}`` of median latency."""
        return {} if self.cost is None else dict(self.cost.speedup)

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-serialisable ``dict``."""
        return {
            "task": self.task,
            "rows": [r.to_dict() for r in self.rows],
            "cost": None if self.cost is None else self.cost.to_dict(),
            "agreement": self.agreement,
            "newly_wrong": self.newly_wrong,
            "newly_right": self.newly_right,
            "accuracy_drop_points": self.accuracy_drop_points,
        }

    def __str__(self) -> str:
        return format_table(self)

    def _change(self, metric: str) -> float | None:
        found = [r.change for r in self.rows if r.metric == metric]
        return found[0] if found else None


def compare(before: EvaluationReport, after: EvaluationReport) -> Comparison:
    """Compare two reports of the same task (e.g. the original and the pruned model).

    Raises:
        ConfigError: If the reports are of different tasks.

    Example:
        >>> from prunekit.evaluation.quality import classification_quality
        >>> q0 = classification_quality([[1.0, 0.0], [0.0, 1.0]], [0, 1])
        >>> q1 = classification_quality([[1.0, 0.0], [1.0, 0.0]], [0, 1])
        >>> c = compare(EvaluationReport("classification", 2, q0),
        ...             EvaluationReport("classification", 2, q1))
        >>> c.accuracy_drop_points
        50.0
    """
    if before.task != after.task:
        raise ConfigError(
            f"cannot compare a {before.task!r} report with a {after.task!r} report; evaluate "
            "both models with the same task"
        )
    out = Comparison(task=before.task, rows=_quality_rows(before, after))
    if before.cost is not None and after.cost is not None:
        out.cost = compare_cost(before.cost, after.cost)
        out.rows.extend(_cost_rows(before.cost, after.cost))
    if after.stability is not None:
        out.agreement = after.stability.agreement
        flips = after.stability.flips
        if flips is not None:
            out.newly_wrong, out.newly_right = len(flips.newly_wrong), len(flips.newly_right)
    return out


def _quality_rows(before: EvaluationReport, after: EvaluationReport) -> list[ComparisonRow]:
    b, a = before.quality.to_dict(), after.quality.to_dict()
    rows = []
    top_k = [k for k in b.get("top_k", {}) if k in a.get("top_k", {}) and k != "1"]
    for k in top_k:
        rows.append(_points(f"top-{k} accuracy", b["top_k"][k], a["top_k"][k]))
    for name in _FRACTIONS[before.task]:
        rows.append(_points(name, b.get(name), a.get(name)))
    for name in _VALUES[before.task]:
        bv, av = b.get(name), a.get(name)
        change = None if bv is None or av is None else av - bv
        rows.append(ComparisonRow(_LABELS.get(name, name), "value", bv, av, change, "delta"))
    order = {"accuracy": 0}
    return sorted(rows, key=lambda r: order.get(r.metric, 1))


def _cost_rows(before: CostProfile, after: CostProfile) -> list[ComparisonRow]:
    rows = [
        _shrink("params", "count", before.params, after.params),
        _shrink("MACs / sample", "count", before.macs, after.macs),
        _shrink("state_dict bytes", "bytes", before.state_dict_bytes, after.state_dict_bytes),
        _shrink("fp32 bytes", "bytes", before.fp32_bytes, after.fp32_bytes),
    ]
    for mem in before.memory:
        other = after.memory_at(mem.batch_size)
        if other is not None:
            name = f"peak memory @{mem.batch_size}"
            rows.append(_shrink(name, "bytes", mem.peak_bytes, other.peak_bytes))
    for lat in before.latency:
        o = after.latency_at(lat.batch_size)
        if o is None:
            continue
        size = lat.batch_size
        rows.append(_shrink(f"latency median @{size}", "ms", lat.median_ms, o.median_ms))
        rows.append(_shrink(f"latency p90 @{size}", "ms", lat.p90_ms, o.p90_ms))
        gain = ratio(o.throughput, lat.throughput)
        rows.append(
            ComparisonRow(
                f"throughput @{size}", "samples/s", lat.throughput, o.throughput, gain, "ratio"
            )
        )
    return rows


def _points(name: str, before: float | None, after: float | None) -> ComparisonRow:
    change = None if before is None or after is None else (after - before) * 100.0
    return ComparisonRow(name, "fraction", before, after, change, "points")


def _shrink(name: str, unit: str, before: float | None, after: float | None) -> ComparisonRow:
    return ComparisonRow(name, unit, before, after, ratio(before, after), "ratio")


def format_table(comparison: Comparison, *, title: str | None = None) -> str:
    """Render a comparison as an aligned plain-text table for terminals and logs.

    Example:
        >>> c = Comparison("classification", [
        ...     ComparisonRow("accuracy", "fraction", 0.95, 0.9375, -1.25, "points"),
        ...     ComparisonRow("params", "count", 20000, 5000, 4.0, "ratio")])
        >>> print(format_table(c))
        metric     before    after      change
        accuracy   95.00%   93.75%   -1.25 pts
        params     20,000    5,000       4.00x
    """
    header = ("metric", "before", "after", "change")
    body = [
        (r.metric, _value(r.before, r.unit), _value(r.after, r.unit), _change(r))
        for r in comparison.rows
    ]
    if comparison.agreement is not None:
        body.append(("agreement with reference", "", _value(comparison.agreement, "fraction"), ""))
    if comparison.newly_wrong is not None:
        flips = f"{comparison.newly_wrong} / {comparison.newly_right}"
        body.append(("newly wrong / newly right", "", flips, ""))
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(4)]
    lines = [title] if title else []
    for row in [header, *body]:
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i] + 3) for i in (1, 2, 3)]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "fraction":
        return f"{value * 100:.2f}%"
    if unit == "count":
        return f"{int(value):,}"
    if unit == "bytes":
        return _bytes(value)
    if unit == "ms":
        return f"{value:.3f} ms"
    if unit == "samples/s":
        return f"{value:,.1f}/s"
    return f"{value:.4g}"


def _bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.2f} GiB"


def _change(row: ComparisonRow) -> str:
    if row.change is None:
        return "n/a"
    if row.change_kind == "points":
        return f"{row.change:+.2f} pts"
    if row.change_kind == "ratio":
        return f"{row.change:.2f}x"
    return f"{row.change:+.4g}"
