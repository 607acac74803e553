"""The CLI's result tables: a run's before/after, an evaluation, an export (all on stderr).

Every number says what it is: accuracies name their data split, latencies are the median
with the interquartile range over the timed runs, and an export's two latencies say what
each one timed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .output import Output

if TYPE_CHECKING:
    from ..export import ExportReport
    from ..pipeline import RunResult

__all__ = ["evaluation_rows", "export_rows", "latency_cell", "show_run"]

SPLIT_NAMES = {"val": "validation", "test": "test"}


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def latency_cell(evaluation: dict[str, Any], batch: str) -> str:
    """``"1.234 ms (IQR 1.201-1.310)"``: the median latency at ``batch`` and its spread.

    Example:
        >>> latency_cell({"latency_ms": {"1": 1.234}, "latency_iqr_ms": {"1": [1.2, 1.31]}}, "1")
        '1.234 ms (IQR 1.200-1.310)'
        >>> latency_cell({"latency_ms": {"1": 1.234}}, "1")
        '1.234 ms'
    """
    median = evaluation["latency_ms"][batch]
    spread = (evaluation.get("latency_iqr_ms") or {}).get(batch)
    if spread is None or len(spread) != 2:
        return f"{median:.3f} ms"
    return f"{median:.3f} ms (IQR {spread[0]:.3f}-{spread[1]:.3f})"


def show_run(out: Output, result: RunResult) -> None:
    """The before/after table of a run, and where its report is."""
    base = result.stages[0]
    split = SPLIT_NAMES.get(result.split, result.split)
    rows = [
        [
            s.stage,
            _pct(s.accuracy),
            f"{s.params:,}",
            f"{s.params / max(base.params, 1):.2f}x",
            f"{s.macs:,}",
            f"{s.macs / max(base.macs, 1):.2f}x",
        ]  # fmt: skip
        for s in result.stages
    ]
    header = ["stage", f"{split} accuracy", "params", "(x)", "MACs", "(x)"]
    out.table(f"accuracy on the {split} split, and cost", header, rows)
    extra = []
    for key, label in (("macro_f1", "macro-F1"), ("ece", "ECE"), ("agreement", "agreement")):
        b, a = result.baseline.get(key), result.pruned.get(key)
        if a is not None:
            extra.append([f"{label} ({split})", "—" if b is None else _pct(b), _pct(a)])
    lat_b, lat_a = result.baseline.get("latency_ms", {}), result.pruned.get("latency_ms", {})
    for bs in lat_a:
        if bs in lat_b:
            extra.append([f"latency, batch {bs}", latency_cell(result.baseline, bs),
                          latency_cell(result.pruned, bs)])  # fmt: skip
    if extra:
        out.table("quality and speed (before → after)", ["metric", "before", "after"], extra)
        if lat_a:
            threads = result.pruned.get("latency_threads", "?")
            out.say(f"latency: PyTorch eager forward pass on CPU, median (IQR) of the timed "
                    f"runs, {threads} threads")  # fmt: skip
    out.say(f"report: {result.report}")


def evaluation_rows(before: dict[str, Any], after: dict[str, Any] | None) -> list[list[str]]:
    """Rows of ``prunekit evaluate``: one metric each, baseline (and pruned) values."""
    rows = []
    for key in ("accuracy", "macro_f1", "ece", "agreement", "params", "macs"):
        if key in before or (after and key in after):
            vals = [before.get(key)] + ([after.get(key)] if after is not None else [])
            cells = ["—" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:.4f}")
                     for v in vals]  # fmt: skip
            rows.append([key, *cells])
    for batch in before.get("latency_ms", {}):
        cells = [latency_cell(before, batch)]
        if after is not None:
            cells.append(latency_cell(after, batch) if batch in after.get("latency_ms", {})
                         else "—")  # fmt: skip
        rows.append([f"latency, batch {batch}", *cells])
    return rows


_RUNTIMES = {
    "onnx": "onnxruntime InferenceSession.run (CPU provider, graph optimisations on)",
    "torchscript": "the torch.jit.trace'd module",
}


def export_rows(rep: ExportReport, fmt: str) -> tuple[list[list[str]], str]:
    """The rows of ``prunekit export`` and the line that says what the latencies timed."""
    diff = f"{rep.max_abs_diff:.2e}" if rep.max_abs_diff is not None else "—"
    rows = [["file", rep.path], ["exporter", rep.exporter], ["bytes", f"{rep.bytes:,}"],
            ["max |diff|", diff]]  # fmt: skip
    if rep.torch_latency_ms is None or rep.export_latency_ms is None:
        return rows, ""
    rows += [["PyTorch eager latency", f"{rep.torch_latency_ms:.3f} ms"],
             [f"{fmt} latency", f"{rep.export_latency_ms:.3f} ms"]]  # fmt: skip
    caveat = (
        f"latency: median of repeated forward passes of the same example batch, "
        f"{rep.threads} thread(s), in this process. PyTorch: model(x) under inference_mode "
        f"(Python module calls, eager kernels). {fmt}: {_RUNTIMES.get(fmt, fmt)}. On small "
        "models the gap is mostly per-call framework overhead, not arithmetic"
    )
    return rows, caveat
