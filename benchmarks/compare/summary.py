"""Aggregate result rows over seeds: mean ± std per (task, level, method), and the verdict.

Everything here reads the JSON rows only, so the doc and plots can be rebuilt from a saved
results file without rerunning anything.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from prunekit.evaluation import metric_spread

__all__ = ["Aggregate", "Headline", "aggregate", "fmt", "headline", "meets_budget", "verdict"]

_METRICS = ("macs_reduction", "raw_acc", "comp_acc", "comp_s", "bn_acc", "ft_acc", "ft_f1", "prune_s", "search_s",
            "neurons_removed", "lat_b1_ms", "lat_b64_ms", "base_lat_b1_ms", "base_lat_b64_ms",
            "eager_lat_b64_ms", "base_eager_lat_b64_ms",
            "base_acc", "params", "speedup_per_macs_b64")  # fmt: skip


def _derived(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` plus ``speedup_per_macs_b64``: its own batch-64 speed-up over its own MACs
    reduction (latency is timed on one seed; averaging the MACs of all seeds would mix)."""
    lat, base, red = row.get("lat_b64_ms"), row.get("base_lat_b64_ms"), row.get("macs_reduction")
    if lat and base and red:
        return {**row, "speedup_per_macs_b64": base / lat / red}
    return row


@dataclass
class Aggregate:
    """One (task, level, method) cell: metric name -> (mean, std, n)."""

    task: str
    level: float | None
    method: str
    tool: str
    recovery: str
    stats: dict[str, tuple[float, float, int]]
    notes: list[str]

    def mean(self, key: str) -> float | None:
        return self.stats[key][0] if key in self.stats else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def aggregate(rows: list[dict[str, Any]]) -> list[Aggregate]:
    """Group rows by (task, level, method) in first-seen order; mean ± std over seeds."""
    groups: dict[tuple[str, Any, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["task"], row.get("level"), row["method"])].append(_derived(row))
    out = []
    for (task, level, method), rs in groups.items():
        stats = {}
        for key in _METRICS:
            vals = [r[key] for r in rs if r.get(key) is not None]
            if vals:
                s = metric_spread(vals)
                stats[key] = (s.mean, s.std, s.n)
        notes = sorted({n for r in rs for n in r.get("notes", []) if not n.startswith("ratio ")})
        out.append(Aggregate(task, level, method, rs[0]["tool"], rs[0].get("recovery", "-"),
                             stats, notes))  # fmt: skip
    return out


def fmt(agg: Aggregate, key: str, digits: int = 1) -> str:
    """``mean ± std`` (or ``-`` when the metric is missing)."""
    if key not in agg.stats:
        return "-"
    m, s, n = agg.stats[key]
    return f"{m:.{digits}f} ± {s:.{digits}f}" if n > 1 else f"{m:.{digits}f}"


def meets_budget(c: Aggregate) -> bool:
    """A MACs cell counts only if its realised reduction reaches the target (1 % slack):
    a method that cannot cut that far must not win the accuracy comparison by cutting less."""
    red = c.mean("macs_reduction")
    if c.level is None or c.mean("neurons_removed") is not None or red is None:
        return True
    return red >= 0.99 * c.level


def _best(cells: list[Aggregate], tool: str, recovery: str | None,
          key: str = "ft_acc") -> Aggregate | None:  # fmt: skip
    pool = [c for c in cells if c.tool == tool and c.mean(key) is not None
            and (recovery is None or c.recovery == recovery) and meets_budget(c)]  # fmt: skip
    return max(pool, key=lambda c: c.mean(key) or 0.0) if pool else None


def _versus(pk: Aggregate, tp: Aggregate) -> str:
    diff = (pk.mean("ft_acc") or 0.0) - (tp.mean("ft_acc") or 0.0)
    where = "ahead of" if diff > 0 else ("level with" if diff == 0 else "**behind**")
    return (f"prunekit best `{pk.method}` {fmt(pk, 'ft_acc', 2)}% (MACs ÷{pk.mean('macs_reduction'):.2f})"
            f" is {where} Torch-Pruning best `{tp.method}` {fmt(tp, 'ft_acc', 2)}% "
            f"(MACs ÷{tp.mean('macs_reduction'):.2f}) by {diff:+.2f} points")  # fmt: skip


def verdict(cells: list[Aggregate]) -> str:
    """prunekit's best vs Torch-Pruning's best final accuracy in one (task, level): first
    with the same recovery (plain fine-tuning), then prunekit with its recovery options."""
    tp = _best(cells, "torch-pruning", None)
    same = _best(cells, "prunekit", "finetune")
    if tp is None or same is None:
        return "no prunekit / Torch-Pruning pair in this cell"
    text = "Same recovery: " + _versus(same, tp)
    overall = _best(cells, "prunekit", None)
    if overall is not None and overall is not same:
        text += f". With prunekit's recovery options: {_versus(overall, tp)}"
    return text


@dataclass
class Headline:
    """One (task, level) of one run in the summary table: the best of each side."""

    task: str
    level: float
    unpruned: Aggregate
    tp: Aggregate
    pk_same: Aggregate
    pk_any: Aggregate
    seeds: int


def headline(cells: list[Aggregate], key: str = "ft_acc") -> list[Headline]:
    """Per (task, level) with both tools: unpruned, Torch-Pruning's best, prunekit's best
    with the same recovery and prunekit's best with any of its recovery options, ranked by
    ``key`` (``"bn_acc"``: right after the cut and BatchNorm recalibration, no training;
    there "any recovery option" means with compensation)."""
    out = []
    ref = {c.task: c for c in cells if c.method == "unpruned"}
    keys = dict.fromkeys((c.task, c.level) for c in cells if c.level is not None)
    for task, level in keys:
        lc = [c for c in cells if c.task == task and c.level == level]
        tp = _best(lc, "torch-pruning", None, key)
        same, any_ = _best(lc, "prunekit", "finetune", key), _best(lc, "prunekit", None, key)
        if tp is None or same is None or any_ is None or task not in ref or level is None:
            continue
        seeds = ref[task].stats["ft_acc"][2]
        out.append(Headline(task, level, ref[task], tp, same, any_, seeds))
    return out
