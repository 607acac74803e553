"""Shared look of the report: colours, figure creation and saving, number formatting.

Figures are made with :class:`matplotlib.figure.Figure` directly (rendered by Agg when
saved as PNG), never through ``pyplot``: no global state, no GUI backend, safe in threads.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

__all__ = [
    "BEFORE", "AFTER", "ACCENT", "PALETTE", "new_figure", "save_figure", "human", "ms", "shorten",
]  # fmt: skip

BEFORE = "#a8b3bd"  # the unpruned model
AFTER = "#1f6feb"  # the pruned model
ACCENT = "#d1242f"  # the chosen point, warnings
PALETTE = ["#1f6feb", "#e36209", "#2da44e", "#8250df", "#bf3989", "#0a7f84", "#9a6700", "#57606a"]
DPI = 110


def new_figure(width: float, height: float, **kwargs: Any) -> Figure:
    """A constrained-layout figure of ``width`` x ``height`` inches."""
    fig = Figure(figsize=(width, height), layout="constrained", **kwargs)
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG to ``path`` and return ``path``."""
    fig.savefig(path, dpi=DPI, format="png", facecolor="white")
    return path


def human(value: float, *, digits: int = 3) -> str:
    """A count with a k / M / G / T suffix and ``digits`` significant digits.

    Example:
        >>> human(1234), human(12_345_678), human(999), human(0.5)
        ('1.23k', '12.3M', '999', '0.5')
    """
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


def ms(value: float) -> str:
    """Milliseconds with three significant digits, never in exponent notation.

    Example:
        >>> ms(0.36912), ms(17.84), ms(1400.2)
        ('0.369 ms', '17.8 ms', '1,400 ms')
    """
    return f"{value:,.0f} ms" if abs(value) >= 100 else f"{value:.3g} ms"


def shorten(name: str, width: int = 36) -> str:
    """``name`` cut to ``width`` characters, keeping its end (the most specific part).

    Example:
        >>> shorten("encoder.layers.11.attention.output.dense", 24)
        '….attention.output.dense'
    """
    return name if len(name) <= width else "…" + name[-(width - 1) :]


_SCOPES = {"global": "ranked across layers", "local": "same ratio per layer"}


def strategy_label(name: str) -> str:
    """A search strategy's default name (``"<criterion>-<scope>"``) in words; other names
    are kept as given.

    Example:
        >>> strategy_label("taylor-global"), strategy_label("l2-local"), strategy_label("mine")
        ('taylor, ranked across layers', 'l2, same ratio per layer', 'mine')
    """
    criterion, sep, scope = name.rpartition("-")
    if sep and criterion and scope in _SCOPES:
        return f"{criterion}, {_SCOPES[scope]}"
    return name


def group_label(key: str, width: int = 36) -> str:
    """A group's key in words: ``"conv1.weight:0"`` (the units along dim 0 of conv1's
    weight) reads ``"conv1 (output units)"``; other keys are shortened.

    Example:
        >>> group_label("features.3.weight:0"), group_label("embed.weight:1")
        ('features.3 (output units)', 'embed (dim 1 of weight)')
    """
    tensor, sep, dim = key.rpartition(":")
    if sep and dim.isdigit() and "." in tensor:
        module, _, param = tensor.rpartition(".")
        what = "output units" if dim == "0" and param == "weight" else f"dim {dim} of {param}"
        return shorten(f"{module} ({what})", width)
    return shorten(key, width)
