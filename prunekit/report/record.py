"""RunRecord: everything one prune-recover-evaluate run measured, as plain JSON-able data.

The record is what a report is rendered from (:func:`prunekit.report.write_report`). It is
deliberately dict-based and tolerant: every part is optional, the evaluations are plain
dicts with whatever keys the run measured, and the renderer plots only what is present.

Evaluation dicts (``baseline`` and ``pruned``) understand these keys:

- scores in [0, 1]: ``accuracy``, ``macro_f1``, ... (shown as percent, change in points)
- costs: ``params``, ``macs``, ``bytes`` (change shown as a ratio)
- ``latency_ms``: ``{batch size: median milliseconds}``
- ``confusion``: a square list of lists, rows = true class, columns = predicted
- any other number (``loss`` ...) is shown with its difference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["RunRecord"]

RECORD_FORMAT = 1


def _check_type(name: str, value: Any, kind: type | tuple[type, ...], hint: str) -> None:
    if not isinstance(value, kind):
        raise ConfigError(f"RunRecord.{name} is a {type(value).__name__}; it must be {hint}")


def _plain(value: Any) -> Any:
    """JSON fallback for numpy / torch values and objects with ``to_dict``."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _str_latency_keys(evaluation: dict[str, Any]) -> dict[str, Any]:
    """A copy with ``latency_ms`` keyed by str batch sizes (as JSON will key it)."""
    out = dict(evaluation)
    if isinstance(out.get("latency_ms"), dict):
        out["latency_ms"] = {str(k): v for k, v in out["latency_ms"].items()}
    return out


@dataclass
class RunRecord:
    """What one run did and measured; every field but ``title`` may stay empty.

    Attributes:
        title: Report heading.
        recipe: The recipe that was run (rendered as YAML), or ``None``.
        baseline: Evaluation of the unpruned model (see the module docstring for keys).
        pruned: Evaluation of the pruned (and recovered) model.
        metric: The key of the quality metric the trade-off and sensitivity plots use.
        layer_widths: ``{module name: (width before, width after)}``
            (see :func:`prunekit.report.layer_widths`).
        importance: ``{group: [score per unit]}``.
        sensitivity: ``{group: {pruning ratio: metric}}``.
        tradeoff: Points ``{"strategy", "macs", "params", "metric", "chosen"}``.
        timings: ``{step name: seconds}``.
        newly_wrong: Examples right before and wrong after:
            ``{"index", "true", "pred_before", "pred_after"}``.
        class_names: Labels for class indices (confusion matrix, newly-wrong table).
        notes: Free text lines shown at the top.
        meta: Anything else (seeds, versions, dataset); shown as a key/value table.

    Example:
        >>> rec = RunRecord("demo", baseline={"accuracy": 0.9}, pruned={"accuracy": 0.88},
        ...                 sensitivity={"fc": {0.5: 0.8}})
        >>> RunRecord.from_json(rec.to_json()) == rec
        True
    """

    title: str = "prunekit run"
    recipe: dict[str, Any] | None = None
    baseline: dict[str, Any] = field(default_factory=dict)
    pruned: dict[str, Any] = field(default_factory=dict)
    metric: str = "accuracy"
    layer_widths: dict[str, tuple[int, int]] = field(default_factory=dict)
    importance: dict[str, list[float]] = field(default_factory=dict)
    sensitivity: dict[str, dict[float, float]] = field(default_factory=dict)
    tradeoff: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    newly_wrong: list[dict[str, Any]] = field(default_factory=list)
    class_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_type("title", self.title, str, "a str")
        _check_type("metric", self.metric, str, "a str such as 'accuracy'")
        if self.recipe is not None:
            _check_type("recipe", self.recipe, dict, "a dict (the loaded recipe) or None")
        for name in (
            "baseline",
            "pruned",
            "layer_widths",
            "importance",
            "sensitivity",
            "timings",
            "meta",
        ):
            _check_type(name, getattr(self, name), dict, "a dict")
        for name in ("tradeoff", "newly_wrong"):
            _check_type(name, getattr(self, name), list, "a list of dicts")
        if isinstance(self.notes, str):
            self.notes = [self.notes]
        self.baseline, self.pruned = (
            _str_latency_keys(self.baseline),
            _str_latency_keys(self.pruned),
        )
        try:
            self.layer_widths = {
                str(k): (int(v[0]), int(v[1])) for k, v in self.layer_widths.items()
            }
            self.importance = {str(k): [float(s) for s in v] for k, v in self.importance.items()}
            self.sensitivity = {
                str(g): {float(r): float(m) for r, m in curve.items()}
                for g, curve in self.sensitivity.items()
            }
            self.timings = {str(k): float(v) for k, v in self.timings.items()}
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ConfigError(
                f"RunRecord has a malformed part ({exc}); layer_widths maps names to "
                "(before, after) ints, importance names to lists of floats, sensitivity "
                "names to {ratio: metric}, timings names to seconds"
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (ratio keys become strings)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["layer_widths"] = {k: list(v) for k, v in self.layer_widths.items()}
        data["sensitivity"] = {
            g: {repr(r): m for r, m in curve.items()} for g, curve in self.sensitivity.items()
        }
        return {"format": RECORD_FORMAT, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Rebuild a record from :meth:`to_dict` output.

        Raises:
            ConfigError: an unknown key or a part of the wrong type (the message names it).
        """
        if not isinstance(data, dict):
            raise ConfigError(f"a RunRecord dict is needed, got a {type(data).__name__}")
        data = dict(data)
        fmt = data.pop("format", RECORD_FORMAT)
        if fmt != RECORD_FORMAT:
            raise ConfigError(f"run record format {fmt!r} is not {RECORD_FORMAT}; write it again")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"RunRecord has no field(s) {unknown}; valid fields: {sorted(known)}")
        return cls(**data)

    def to_json(self, path: str | Path | None = None) -> str:
        """The record as JSON text, also written to ``path`` when given."""
        try:
            text = json.dumps(self.to_dict(), indent=1, default=_plain)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"the run record cannot be written as JSON ({exc}); keep its values to numbers, "
                "strings, lists and dicts"
            ) from exc
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> RunRecord:
        """A record from JSON text or a file written by :meth:`to_json`."""
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"the run record is not valid JSON ({exc}); write it again") from exc
