"""Save a pruned model as a directory (plans + safetensors + JSON) and load it back.

No pickle anywhere: the cut is ``plan.json`` (every :class:`~prunekit.PruningPlan` step), the
weights are ``model.safetensors``, the example inputs the plans were traced with are
``inputs.safetensors`` plus their structure in ``meta.json``. Loading builds a fresh unpruned
model, replays the plans (which rebuilds the pruned shapes) and loads the weights.

Directory layout::

    meta.json           format version, prunekit/torch versions, model class, params, inputs
    plan.json           {"schedule": [step plans...]} (a PruningPlan of steps)
    model.safetensors   the state_dict, tied tensors stored once
    inputs.safetensors  example inputs for replay (absent for a model never pruned)
    recipe.yaml         the recipe, when given
    metrics.json        the metrics, when given
    hf/                 ``save_pretrained`` output of a Hugging Face model

The ``hf/`` folder is for Hugging Face tooling (``from_pretrained`` reads the pruned config
and weights there); :func:`load` itself always rebuilds from the plans and safetensors, so
for a Hugging Face model pass a factory such as ``lambda: AutoModel.from_config(config)``.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import save_file
from torch import nn

from ..errors import ExportError, PlanError, PrunekitError
from ..plan import PruningPlan, pruning_history
from ..result import PruneResult
from .structure import flatten_structure, unflatten_structure
from .weights import load_weights, read_weights, save_weights

__all__ = ["save", "load", "read_meta", "SAVE_FORMAT"]

SAVE_FORMAT = 1
_OPTIONAL = ("inputs.safetensors", "recipe.yaml", "metrics.json", "hf")

PlanLike = PruningPlan | Sequence[PruningPlan]


@dataclass
class _Artefact:
    model: nn.Module
    steps: list[PruningPlan]
    example_inputs: Any


def _package_version(name: str) -> str:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def _class_name(model: nn.Module) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _steps_of(plan: PlanLike) -> list[PruningPlan]:
    if isinstance(plan, PruningPlan):
        return plan.steps
    steps = list(plan)
    bad = [type(p).__name__ for p in steps if not isinstance(p, PruningPlan)]
    if bad:
        raise ExportError(
            f"plan= holds a {bad[0]}; pass a PruningPlan (one step or several) or a list of them"
        )
    return steps


def _resolve(obj: Any, plan: PlanLike | None, example_inputs: Any) -> _Artefact:
    """The model, its plan steps and replay inputs, from whatever ``save`` was given."""
    if isinstance(obj, PruneResult):
        model, inputs = obj.model, obj.example_inputs
        steps, hist_inputs = pruning_history(model)
        steps = steps or [obj.plan]
        inputs = hist_inputs if hist_inputs is not None else inputs
    elif isinstance(obj, nn.Module):
        model = obj
        steps, inputs = pruning_history(model)
    else:
        raise ExportError(
            f"save() got a {type(obj).__name__}; pass an nn.Module or a prunekit.PruneResult"
        )
    if plan is not None:
        steps = _steps_of(plan)
    if example_inputs is not None:
        inputs = example_inputs
    if steps and inputs is None:
        raise ExportError(
            f"the model has {len(steps)} plan step(s) but no example inputs to replay them; "
            "pass example_inputs= (the inputs the plan was made with)"
        )
    return _Artefact(model, steps, inputs)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _write_json(path: Path, data: Any, what: str) -> None:
    try:
        text = json.dumps(data, indent=1, default=_jsonable)
    except (TypeError, ValueError) as exc:
        raise ExportError(
            f"{what} cannot be written as JSON ({exc}); pass plain numbers, strings, lists, "
            "dicts, or objects with a to_dict() method"
        ) from exc
    path.write_text(text)


def _save_hf(model: nn.Module, out: Path, hf: bool | None) -> bool:
    saver = getattr(model, "save_pretrained", None)
    if hf is False or (hf is None and not callable(saver)):
        return False
    if not callable(saver):
        raise ExportError(
            f"hf=True but {type(model).__name__} has no save_pretrained method; pass hf=None "
            "or hf=False for models that are not Hugging Face models"
        )
    saver(str(out / "hf"))
    return True


def _prepare_dir(path: str | Path) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ExportError(f"save path {out} is an existing file; pass a directory path")
    out.mkdir(parents=True, exist_ok=True)
    for name in _OPTIONAL:  # never leave a stale file from an earlier save beside new ones
        stale = out / name
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    return out


def save(
    model_or_result: nn.Module | PruneResult,
    path: str | Path,
    *,
    plan: PlanLike | None = None,
    example_inputs: Any = None,
    recipe: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    hf: bool | None = None,
) -> Path:
    """Write a (pruned) model to the directory ``path``: plans, safetensors weights, JSON.

    Args:
        model_or_result: A model (its pruning history says how it was cut; a model prunekit
            never cut is saved as unpruned) or a :class:`~prunekit.PruneResult`.
        path: The directory to write (created; files of an earlier save are replaced).
        plan: Override the recorded history: a PruningPlan (one step or several) or a list of steps.
        example_inputs: Override the recorded replay inputs (tensor, tuple or dict).
        recipe: Written to ``recipe.yaml`` (``yaml.safe_dump``).
        metrics: Written to ``metrics.json``.
        hf: Also call ``model.save_pretrained(path / "hf")``: ``None`` does so when the model
            has that method, ``True`` requires it, ``False`` never.

    Returns:
        The directory.

    Raises:
        ExportError: the inputs, recipe or metrics cannot be stored, or nothing says how to
            replay the plan.

    Example:
        >>> import tempfile, torch, prunekit
        >>> from prunekit.export import save, load
        >>> def make():
        ...     return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> res = prunekit.prune(make(), torch.randn(1, 4), ratio=0.5)
        >>> out = save(res, tempfile.mkdtemp(), metrics={"accuracy": 0.9})
        >>> sorted(p.name for p in out.iterdir())
        ['inputs.safetensors', 'meta.json', 'metrics.json', 'model.safetensors', 'plan.json']
        >>> load(out, make)[0].out_features
        4
    """
    art = _resolve(model_or_result, plan, example_inputs)
    out = _prepare_dir(path)
    spec, tensors = (
        (None, {}) if art.example_inputs is None else flatten_structure(art.example_inputs)
    )
    PruningPlan(steps=art.steps).to_json(out / "plan.json")
    tied = save_weights(art.model, out / "model.safetensors")
    if spec is not None:
        save_file(tensors, str(out / "inputs.safetensors"))
    if recipe is not None:
        try:
            (out / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
        except yaml.YAMLError as exc:
            raise ExportError(
                f"recipe cannot be written as YAML ({exc}); pass plain dicts, lists and scalars"
            ) from exc
    if metrics is not None:
        _write_json(out / "metrics.json", metrics, "metrics")
    has_hf = _save_hf(art.model, out, hf)
    meta = {
        "format": SAVE_FORMAT,
        "prunekit_version": _package_version("prunekit"),
        "torch_version": torch.__version__,
        "model_class": _class_name(art.model),
        "params": sum(p.numel() for p in art.model.parameters()),
        "pruned": bool(art.steps),
        "num_steps": len(art.steps),
        "inputs": spec,
        "tied": tied,
        "hf": has_hf,
    }
    _write_json(out / "meta.json", meta, "meta")
    return out


def read_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta.json`` of a directory written by :func:`save`.

    Raises:
        ExportError: the directory, or its ``meta.json``, is missing, damaged, or of a
            format this version does not read.
    """
    folder = Path(path)
    if not folder.exists():
        raise ExportError(
            f"{path} does not exist; pass the directory prunekit.export.save wrote "
            f"(relative paths start at {Path.cwd()})"
        )
    if not folder.is_dir():
        raise ExportError(
            f"{path} is a file, not a directory; pass the directory prunekit.export.save wrote"
        )
    file = folder / "meta.json"
    if not file.is_file():
        raise ExportError(
            f"{path} has no meta.json; pass a directory written by prunekit.export.save"
        )
    try:
        meta = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{file} is not valid JSON ({exc}); save the model again") from exc
    if not isinstance(meta, dict) or meta.get("format") != SAVE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ExportError(
            f"{file} has format {found!r}, this prunekit reads format {SAVE_FORMAT}; "
            "save the model again with this version"
        )
    return meta


def _build(model_factory: Callable[[], nn.Module] | nn.Module) -> nn.Module:
    if isinstance(model_factory, nn.Module):
        return copy.deepcopy(model_factory)
    if not callable(model_factory):
        raise ExportError(
            f"model_factory is a {type(model_factory).__name__}; pass a callable that builds "
            "the unpruned model, or an unpruned nn.Module instance (it is copied)"
        )
    model = model_factory()
    if not isinstance(model, nn.Module):
        raise ExportError(
            f"model_factory() returned a {type(model).__name__}, not an nn.Module; it must "
            "build the unpruned model"
        )
    return model


def _replay(model: nn.Module, out: Path, meta: dict[str, Any], device: str | torch.device) -> None:
    try:
        steps = PruningPlan.from_json(out / "plan.json").steps
    except (PlanError, OSError) as exc:
        raise ExportError(f"cannot read {out / 'plan.json'} ({exc}); save the model again") from exc
    if not steps:
        return
    if meta.get("inputs") is None:
        raise ExportError(
            f"{out} has {len(steps)} plan steps but no stored example inputs; save again"
        )
    try:
        tensors = read_weights(out / "inputs.safetensors", device=device)
        inputs = unflatten_structure(meta["inputs"], tensors)
    except ExportError as exc:
        raise ExportError(
            f"{out} has {len(steps)} plan steps but its example inputs cannot be read "
            f"({exc}); they are needed to replay the plans: save the model again"
        ) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(
            f"{out / 'meta.json'}: its 'inputs' entry does not match inputs.safetensors "
            f"({type(exc).__name__}: {exc}); save the model again"
        ) from exc
    for i, step in enumerate(steps, 1):
        try:
            step.apply(model, inputs, inplace=True)
        except PrunekitError as exc:
            raise ExportError(
                f"plan step {i} of {len(steps)} does not fit the model built by model_factory "
                f"({exc}); the directory holds a pruned {meta.get('model_class')}, pass a "
                "factory that builds that unpruned architecture"
            ) from exc


def load(
    path: str | Path,
    model_factory: Callable[[], nn.Module] | nn.Module,
    *,
    strict: bool = True,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """Rebuild a model saved by :func:`save`: fresh model, replayed plans, stored weights.

    Args:
        path: The directory :func:`save` wrote.
        model_factory: Builds the unpruned architecture: a callable, or an ``nn.Module``
            (deep-copied, never modified).
        strict: Every tensor of the rebuilt model must be in the file and vice versa, and
            the factory must build the saved class.
        map_location: Device for the model, its weights and the replay inputs.

    Returns:
        The model in eval mode, carrying the saved pruning history (so it can be saved again
        or pruned further).

    Raises:
        ExportError: the directory is damaged, or the factory builds another architecture
            (the message names the plan group or tensor that does not fit).
    """
    out = Path(path)
    meta = read_meta(out)
    model = _build(model_factory).to(map_location)
    if strict and _class_name(model) != meta.get("model_class"):
        raise ExportError(
            f"model_factory built a {_class_name(model)}, the directory holds a "
            f"{meta.get('model_class')}; pass a factory that builds that class, or strict=False"
        )
    _replay(model, out, meta, map_location)
    load_weights(model, out / "model.safetensors", strict=strict, device=map_location)
    return model.eval()
