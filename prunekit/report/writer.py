"""Write a run's report directory and read its record back.

``write_report(record, out_dir)`` writes::

    report.html      self-contained: inline CSS, figures as base64 PNG data URIs
    report.md        the same content, figures as relative links
    *.png            the figures (only those the record has data for)
    metrics.json     baseline and pruned evaluations plus the summary rows
    record.json      the full RunRecord (read back by load_record)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError
from .document import to_html, to_markdown
from .plots_model import plot_importance, plot_sensitivity, plot_widths
from .plots_results import plot_confusion_diff, plot_latency, plot_tradeoff
from .record import RunRecord
from .sections import build_blocks
from .summary import summary_rows

__all__ = ["write_report", "load_record", "FIGURES"]

FIGURES: dict[str, Callable[[RunRecord, Path], Path | None]] = {
    "tradeoff_macs": lambda r, d: plot_tradeoff(r, d, x="macs"),
    "tradeoff_params": lambda r, d: plot_tradeoff(r, d, x="params"),
    "widths": plot_widths,
    "importance": plot_importance,
    "sensitivity": plot_sensitivity,
    "latency": plot_latency,
    "confusion": plot_confusion_diff,
}
_FIGURE_FILES = (
    "tradeoff_macs.png", "tradeoff_params.png", "widths.png", "importance.png",
    "sensitivity.png", "latency.png", "confusion_diff.png",
)  # fmt: skip


def _metrics(record: RunRecord) -> dict[str, object]:
    rows = summary_rows(record)
    main = next((r for r in rows if r.metric == record.metric and r.kind == "score"), None)
    drop = None if main is None or main.change is None else -main.change
    return {
        "metric": record.metric,
        "baseline": record.baseline,
        "pruned": record.pruned,
        "summary": [r.to_dict() for r in rows],
        f"{record.metric}_drop_points": drop,
    }


def write_report(record: RunRecord, out_dir: str | Path) -> Path:
    """Render ``record`` into ``out_dir`` (created) and return the ``report.html`` path.

    Figures without data are skipped; stale figures of an earlier report in the same
    directory are removed, so every PNG there belongs to this report.

    Example:
        >>> import tempfile
        >>> rec = RunRecord("demo", baseline={"accuracy": 0.91, "params": 5000},
        ...                 pruned={"accuracy": 0.9, "params": 2000},
        ...                 layer_widths={"fc1": (64, 32)})
        >>> page = write_report(rec, tempfile.mkdtemp())
        >>> sorted(p.name for p in page.parent.iterdir())
        ['metrics.json', 'record.json', 'report.html', 'report.md', 'widths.png']
        >>> load_record(page.parent) == rec
        True
    """
    if not isinstance(record, RunRecord):
        raise ConfigError(f"write_report needs a RunRecord, got a {type(record).__name__}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"report directory {out} is an existing file; pass a directory path")
    out.mkdir(parents=True, exist_ok=True)
    for name in _FIGURE_FILES:
        (out / name).unlink(missing_ok=True)
    figures = {
        key: path for key, plot in FIGURES.items() if (path := plot(record, out)) is not None
    }
    blocks = build_blocks(record, figures)
    (out / "report.md").write_text(to_markdown(record.title, blocks), encoding="utf-8")
    (out / "report.html").write_text(to_html(record.title, blocks), encoding="utf-8")
    (out / "metrics.json").write_text(json.dumps(_metrics(record), indent=1, default=str))
    record.to_json(out / "record.json")
    return out / "report.html"


def load_record(out_dir: str | Path) -> RunRecord:
    """The :class:`RunRecord` a report directory was rendered from.

    Raises:
        ConfigError: the directory has no ``record.json`` or it is damaged.
    """
    path = Path(out_dir) / "record.json"
    if not path.is_file():
        raise ConfigError(f"{out_dir} has no record.json; pass a directory written by write_report")
    return RunRecord.from_json(path)
