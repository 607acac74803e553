"""Turn a recipe's ``model`` and ``data`` sections into a model and DataLoaders.

Model sources form a registry keyed by prefix (``torchvision``, ``timm``, ``hf``,
``python``; a bare name is a built-in :func:`prunekit.models.build_model` model). Register
another with :func:`register_model_source`. Nothing here downloads: torchvision and timm
models are built without pretrained weights, Hugging Face ones with ``local_files_only``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..data import load_dataset
from ..errors import PrunekitError, RegistryError
from ..models import build_model
from .pyimport import ResolveError, call_with_accepted, import_callable
from .schema import DataSpec, Recipe

__all__ = [
    "DataBundle",
    "ModelSource",
    "available_model_sources",
    "build_recipe_model",
    "load_weights_file",
    "model_factory",
    "register_model_source",
    "resolve_data",
]

ModelSource = Callable[[str, Recipe, tuple[int, ...], int | None], nn.Module]
"""``source(rest_of_name, recipe, input_shape, num_classes) -> nn.Module``."""

_SOURCES: dict[str, ModelSource] = {}


@dataclass
class DataBundle:
    """The data a run uses: loaders, one example input batch, shape and label metadata."""

    name: str
    train: DataLoader[Any]
    val: DataLoader[Any]
    test: DataLoader[Any] | None
    input_shape: tuple[int, ...]
    num_classes: int | None
    class_names: list[str] | None

    def example_inputs(self) -> torch.Tensor:
        """One training sample with its batch dimension (traced by the pruner)."""
        x = next(iter(self.train))
        x = x[0] if isinstance(x, (tuple, list)) else x
        one: torch.Tensor = x[:1].clone()
        return one

    def split(self, name: str) -> DataLoader[Any]:
        """``"val"`` or ``"test"`` (test falls back to val when there is none)."""
        return self.test if name == "test" and self.test is not None else self.val


def register_model_source(prefix: str, source: ModelSource, *, override: bool = False) -> None:
    """Register a ``prefix:`` model source.

    Raises:
        RegistryError: ``prefix`` is taken and ``override`` is false.

    Example:
        >>> register_model_source("toy", lambda rest, r, shape, n: nn.Linear(shape[0], n or 2),
        ...                       override=True)
        >>> "toy" in available_model_sources()
        True
    """
    if prefix in _SOURCES and not override:
        raise RegistryError(f"model source {prefix!r} is already registered; pass override=True")
    _SOURCES[prefix] = source


def available_model_sources() -> list[str]:
    """Registered ``prefix:`` model sources."""
    return sorted(_SOURCES)


def _transform(x: torch.Tensor, spec: DataSpec) -> torch.Tensor:
    if spec.size is not None and x.dim() == 4:
        x = F.interpolate(x, size=(spec.size, spec.size), mode="bilinear", align_corners=False)
    if spec.channels is not None and x.dim() >= 3 and x.shape[1] != spec.channels:
        if x.shape[1] != 1:
            raise ResolveError(
                f"data.channels: {spec.channels} can only widen 1-channel inputs, these have "
                f"{x.shape[1]}; remove data.channels"
            )
        x = x.expand(-1, spec.channels, *x.shape[2:]).contiguous()
    return x


def _builtin_data(spec: DataSpec) -> DataBundle:
    try:
        splits = load_dataset(spec.name, seed=spec.seed)
    except PrunekitError as exc:
        raise ResolveError(f"data.name {spec.name!r}: {exc}") from exc
    sets = []
    for part in (splits.train, splits.val, splits.test):
        x, y = part.tensors
        sets.append(TensorDataset(_transform(x, spec), y))
    gen = torch.Generator().manual_seed(spec.seed)
    train = DataLoader(sets[0], batch_size=spec.batch_size, shuffle=True, generator=gen)
    val = DataLoader(sets[1], batch_size=spec.eval_batch_size)
    test = DataLoader(sets[2], batch_size=spec.eval_batch_size) if len(sets[2]) else None
    shape = tuple(sets[0].tensors[0].shape[1:])
    names = list(splits.class_names) if splits.class_names else None
    return DataBundle(spec.name, train, val, test, shape, splits.num_classes, names)


def _infer_classes(loader: DataLoader[Any]) -> int | None:
    top = -1
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            return None
        y = batch[1]
        if not torch.is_tensor(y) or y.is_floating_point():
            return None
        top = max(top, int(y.max()))
    return top + 1 if top >= 0 else None


def _python_data(recipe: Recipe) -> DataBundle:
    spec = recipe.data
    fn = import_callable(spec.name, recipe.base_dir)
    out = call_with_accepted(fn, {"batch_size": spec.batch_size, "seed": spec.seed}, **spec.kwargs)
    if not isinstance(out, (tuple, list)) or len(out) not in (2, 3):
        raise ResolveError(
            f"data.name {spec.name!r} returned {type(out).__name__}; it must return "
            "(train_loader, val_loader) or (train_loader, val_loader, test_loader)"
        )
    train, val, *rest = out
    bundle = DataBundle(spec.name, train, val, rest[0] if rest else None, (), None, None)
    try:
        bundle.input_shape = tuple(bundle.example_inputs().shape[1:])
    except (StopIteration, TypeError, AttributeError, IndexError) as exc:
        raise ResolveError(
            f"data.name {spec.name!r}: its train loader yields no (inputs, labels) batch ({exc})"
        ) from exc
    bundle.num_classes = _infer_classes(train)
    return bundle


def resolve_data(recipe: Recipe) -> DataBundle:
    """The :class:`DataBundle` of ``recipe.data`` (built-in dataset or ``python:`` factory).

    Raises:
        ResolveError: the dataset or factory cannot be loaded or returns the wrong thing.

    Example:
        >>> from prunekit.recipe import parse_recipe
        >>> r = parse_recipe("model: {name: mlp}\\ndata: {name: iris, batch_size: 16}\\n")
        >>> d = resolve_data(r)
        >>> d.input_shape, d.num_classes, tuple(d.example_inputs().shape)
        ((4,), 3, (1, 4))
    """
    if recipe.data.name.startswith("python:"):
        return _python_data(recipe)
    return _builtin_data(recipe.data)


def _builtin(name: str, recipe: Recipe, shape: tuple[int, ...], n: int | None) -> nn.Module:
    if n is None:
        raise ResolveError(
            f"model {name!r} needs the number of classes, which the data does not reveal; "
            "yield integer labels from the train loader"
        )
    return build_model(name, num_classes=n, input_shape=shape, **recipe.model.kwargs)


def _package(name: str, hint: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ResolveError(f"model source needs {name!r}, which is not installed; {hint}") from exc


def _torchvision(name: str, recipe: Recipe, shape: tuple[int, ...], n: int | None) -> nn.Module:
    tv = _package("torchvision", "pip install torchvision (no weights are downloaded)")
    kwargs = dict(recipe.model.kwargs)
    if n is not None:
        kwargs.setdefault("num_classes", n)
    try:
        return tv.models.get_model(name, weights=None, **kwargs)  # type: ignore[no-any-return]
    except (ValueError, KeyError) as exc:
        raise ResolveError(f"model.name 'torchvision:{name}': {exc}") from exc


def _timm(name: str, recipe: Recipe, shape: tuple[int, ...], n: int | None) -> nn.Module:
    timm = _package("timm", "pip install timm")
    kwargs = dict(recipe.model.kwargs)
    if n is not None:
        kwargs.setdefault("num_classes", n)
    if len(shape) == 3:
        kwargs.setdefault("in_chans", shape[0])
    try:
        return timm.create_model(name, pretrained=False, **kwargs)  # type: ignore[no-any-return]
    except RuntimeError as exc:
        raise ResolveError(f"model.name 'timm:{name}': {exc}") from exc


def _hf(name: str, recipe: Recipe, shape: tuple[int, ...], n: int | None) -> nn.Module:
    transformers = _package("transformers", "pip install transformers")
    path = recipe.path(name)
    where = str(path) if path.exists() else name
    try:
        return transformers.AutoModel.from_pretrained(  # type: ignore[no-any-return]
            where, local_files_only=True, **recipe.model.kwargs
        )
    except OSError as exc:
        raise ResolveError(
            f"model.name 'hf:{name}': not found locally ({exc}); give a local directory "
            "(nothing is downloaded)"
        ) from exc


def _python(ref: str, recipe: Recipe, shape: tuple[int, ...], n: int | None) -> nn.Module:
    fn = import_callable(f"python:{ref}", recipe.base_dir)
    model = call_with_accepted(fn, {"num_classes": n, "input_shape": shape}, **recipe.model.kwargs)
    if not isinstance(model, nn.Module):
        raise ResolveError(
            f"model.name 'python:{ref}' returned {type(model).__name__}, not an nn.Module"
        )
    return model


def build_recipe_model(
    recipe: Recipe, input_shape: tuple[int, ...], num_classes: int | None
) -> nn.Module:
    """A fresh, untrained model as ``recipe.model.name`` describes (no weights loaded).

    Raises:
        ResolveError: the source is unknown or cannot build the model.
    """
    prefix, sep, rest = recipe.model.name.partition(":")
    if not sep:
        return _builtin(recipe.model.name, recipe, input_shape, num_classes)
    source = _SOURCES.get(prefix)
    if source is None:
        raise ResolveError(
            f"model source {prefix!r} is unknown; valid: {', '.join(available_model_sources())}"
        )
    try:
        return source(rest, recipe, input_shape, num_classes)
    except ResolveError:
        raise
    except PrunekitError as exc:
        raise ResolveError(f"model.name {recipe.model.name!r}: {exc}") from exc


def load_weights_file(model: nn.Module, path: str) -> None:
    """Load a state_dict from ``.safetensors`` or (``weights_only``) ``.pt``/``.pth``.

    Raises:
        ResolveError: the file is missing, unreadable, or does not fit ``model``.
    """
    from pathlib import Path

    file = Path(path)
    if not file.is_file():
        raise ResolveError(f"model.weights {str(file)!r} does not exist; fix the path")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(file))
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        model.load_state_dict(state)
    except Exception as exc:
        raise ResolveError(
            f"model.weights {str(file)!r} cannot be loaded into {type(model).__name__}: "
            f"{type(exc).__name__}: {str(exc)[:300]}"
        ) from exc


def model_factory(
    recipe: Recipe, input_shape: tuple[int, ...], num_classes: int | None
) -> Callable[[], nn.Module]:
    """A zero-argument factory of the unpruned architecture (for :func:`prunekit.load`)."""
    return lambda: build_recipe_model(recipe, input_shape, num_classes)


for _prefix, _source in (
    ("torchvision", _torchvision),
    ("timm", _timm),
    ("hf", _hf),
    ("python", _python),
):
    register_model_source(_prefix, _source)
