"""The pipeline's single tasks: sensitivity of a baseline, reloading and exporting a run's model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import ValidationError
from torch import nn

from ..errors import ExportError, RecipeError
from ..evaluation import Sensitivity, analyze_sensitivity
from ..export import ExportReport, export_onnx, export_torchscript, load
from ..recipe import Recipe, model_factory
from ..report import RunRecord, write_report
from .cut import build_importance, reestimate
from .measure import accuracy_on
from .session import Session

__all__ = ["EXPORT_FORMATS", "export_run", "load_run_model", "sensitivity", "write_sensitivity"]

EXPORT_FORMATS = ("onnx", "torchscript")


def sensitivity(session: Session) -> Sensitivity:
    """Prune each group of the baseline alone at the recipe's ratios; validation accuracy
    after BN recalibration (the recipe's criterion, ``l2`` without a prune section)."""
    recipe, data = session.recipe, session.data
    spec = recipe.prune if recipe.prune is not None else "l2"

    def score(model: nn.Module) -> float:
        reestimate(model, data)
        return accuracy_on(model, data.val)

    ignore = list(recipe.prune.ignore) if recipe.prune is not None else []
    return analyze_sensitivity(
        session.baseline, session.example, score,
        ratios=recipe.evaluation.sensitivity_ratios,
        importance=build_importance(spec, data), ignore=ignore,
    )  # fmt: skip


def write_sensitivity(session: Session, sens: Sensitivity, out_dir: Path) -> Path:
    """A report with the sensitivity curves (and ``sensitivity.json``) in ``out_dir``."""
    record = RunRecord(
        title=f"prunekit sensitivity: {session.recipe.name}",
        recipe=session.recipe.to_dict(),
        baseline={"accuracy": sens.base},
        sensitivity=sens.metrics,
        meta={"dataset": session.data.name, "ratios": sens.ratios, "split": "val"},
    )
    page = write_report(record, out_dir)
    (out_dir / "sensitivity.json").write_text(json.dumps(sens.to_dict(), indent=1))
    return page


def load_run_model(run_dir: str | Path) -> tuple[nn.Module, dict[str, Any], Recipe]:
    """Rebuild the pruned model of a run directory (``run_dir/model``, or a model directory
    itself) with the recipe's model factory; returns the model, its metrics and the recipe.

    Raises:
        ExportError: there is no saved model, or its recipe or metrics are missing.
    """
    root = Path(run_dir)
    model_dir = root / "model" if (root / "model").is_dir() else root
    recipe_file, info_file = model_dir / "recipe.yaml", model_dir / "metrics.json"
    if not recipe_file.is_file() or not info_file.is_file():
        raise ExportError(
            f"{root} holds no model saved by a recipe run (missing {recipe_file.name} or "
            f"{info_file.name}); pass the directory `prunekit prune` wrote"
        )
    info = json.loads(info_file.read_text())
    try:
        recipe = Recipe.model_validate(yaml.safe_load(recipe_file.read_text()))
    except ValidationError as exc:
        raise RecipeError(f"{recipe_file}: the saved recipe no longer validates: {exc}") from exc
    recipe.located(info.get("recipe_dir", "."), str(recipe_file))
    shape = tuple(int(d) for d in info["input_shape"])
    factory = model_factory(recipe, shape, info.get("num_classes"))
    return load(model_dir, factory), info, recipe


def export_run(
    run_dir: str | Path,
    fmt: str,
    *,
    out: str | Path | None = None,
    threads: int = 1,
    batch: int = 1,
) -> ExportReport:
    """Export a run's pruned model to ONNX or TorchScript, checked against PyTorch and timed.

    Raises:
        ExportError: unknown format, no saved model, or the export does not match PyTorch.
    """
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"--format {fmt!r} is unknown; use one of {', '.join(EXPORT_FORMATS)}")
    model, info, _ = load_run_model(run_dir)
    torch.manual_seed(0)
    example = torch.randn(batch, *[int(d) for d in info["input_shape"]])
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    path = Path(out) if out is not None else Path(run_dir) / f"model{suffix}"
    if fmt == "onnx":
        return export_onnx(model, example, path, threads=threads)
    return export_torchscript(model, example, path, threads=threads)
