"""Run reports: a RunRecord rendered to self-contained HTML + Markdown with PNG plots."""

from .plots_model import plot_importance, plot_sensitivity, plot_widths
from .plots_results import plot_confusion_diff, plot_latency, plot_tradeoff
from .record import RunRecord
from .widths import layer_widths
from .writer import load_record, write_report

__all__ = [
    "RunRecord",
    "layer_widths",
    "load_record",
    "plot_confusion_diff",
    "plot_importance",
    "plot_latency",
    "plot_sensitivity",
    "plot_tradeoff",
    "plot_widths",
    "write_report",
]
