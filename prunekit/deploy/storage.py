"""Save a cascade as a directory of saved stages (plans + safetensors) and load it back.

No pickle: each stage is written by :func:`prunekit.export.save` (its pruning plans, its
safetensors weights and the example inputs that replay the plans) into ``stage_<k>/``, and
the routing into ``cascade.json``::

    cascade.json   {"format": 1, "confidence": ..., "thresholds": [...], "stages": [...],
                    "calibration": {...} | null}
    stage_0/       prunekit.export.save of stage 0 (e.g. the pruned model)
    stage_1/       ... of stage 1 (e.g. the original)

Loading rebuilds every stage from its unpruned architecture (a factory per stage, or one for
all), replays its plans and loads its weights (:func:`prunekit.export.load`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from prunekit.errors import ExportError
from prunekit.export import load, save

from .cascade import Cascade

__all__ = ["CASCADE_FORMAT", "load_cascade", "save_cascade"]

CASCADE_FORMAT = 1
Factory = Callable[[], nn.Module] | nn.Module


def save_cascade(cascade: Cascade, path: str | Path, *, example_inputs: Any = None) -> Path:
    """Write ``cascade`` to the directory ``path`` (see the module doc).

    Args:
        cascade: The cascade to save.
        path: The directory (created; an earlier save's stages there are replaced).
        example_inputs: Replay inputs for stages whose pruning history holds none
            (passed to :func:`prunekit.export.save`).

    Returns:
        The directory.

    Example:
        >>> import tempfile, torch
        >>> from torch import nn
        >>> cascade = Cascade([nn.Linear(4, 3), nn.Linear(4, 3)], threshold=0.7)
        >>> out = save_cascade(cascade, tempfile.mkdtemp())
        >>> again = load_cascade(out, lambda: nn.Linear(4, 3))
        >>> again.thresholds, torch.equal(again(torch.ones(2, 4)), cascade(torch.ones(2, 4)))
        ([0.7], True)
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ExportError(f"save path {out} is an existing file; pass a directory path")
    out.mkdir(parents=True, exist_ok=True)
    names = [f"stage_{k}" for k in range(len(cascade.stages))]
    for name, stage in zip(names, cascade.stages):
        save(stage, out / name, example_inputs=example_inputs, hf=False)
    calibration = cascade.calibration.to_dict() if cascade.calibration is not None else None
    meta = {
        "format": CASCADE_FORMAT,
        "confidence": cascade.confidence,
        "thresholds": [t if math.isfinite(t) else "inf" for t in cascade.thresholds],
        "stages": names,
        "calibration": calibration,
    }
    (out / "cascade.json").write_text(json.dumps(meta, indent=1))
    return out


def _factories(model_factory: Factory | Sequence[Factory], count: int) -> list[Factory]:
    if isinstance(model_factory, Sequence) and not isinstance(model_factory, nn.Module):
        factories = list(model_factory)
        if len(factories) != count:
            raise ExportError(
                f"model_factory lists {len(factories)} factories for a cascade of {count} "
                f"stages; pass one per stage, or one factory that builds every stage's "
                "unpruned architecture"
            )
        return factories
    return [model_factory] * count


def _read(path: Path) -> dict[str, Any]:
    file = path / "cascade.json"
    if not file.is_file():
        raise ExportError(
            f"{path} has no cascade.json; pass a directory written by save_cascade (Cascade.save)"
        )
    try:
        meta = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{file} is not valid JSON ({exc}); save the cascade again") from exc
    if not isinstance(meta, dict) or meta.get("format") != CASCADE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ExportError(
            f"{file} has format {found!r}, this prunekit reads format {CASCADE_FORMAT}; "
            "save the cascade again with this version"
        )
    return meta


def load_cascade(path: str | Path, model_factory: Factory | Sequence[Factory]) -> Cascade:
    """Read a cascade :func:`save_cascade` wrote.

    Args:
        path: The directory.
        model_factory: Builds each stage's unpruned architecture: one callable or module
            for every stage, or a list with one per stage.

    Returns:
        The cascade, every stage in eval mode with its pruning history.

    Raises:
        ExportError: the directory is damaged, or a factory builds another architecture.
    """
    out = Path(path)
    meta = _read(out)
    names = meta["stages"]
    stages = [
        load(out / name, factory)
        for name, factory in zip(names, _factories(model_factory, len(names)))
    ]
    thresholds = [math.inf if t == "inf" else float(t) for t in meta["thresholds"]]
    return Cascade(stages, threshold=thresholds, confidence=meta["confidence"])
