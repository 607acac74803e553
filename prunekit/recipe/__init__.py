"""Recipes: YAML files validated into typed config, and the resolvers of their sources.

``load_recipe(path)`` reads and validates a recipe (errors name file, line, key and the valid
choices); ``resolve_data`` / ``build_recipe_model`` turn its ``data`` and ``model`` sections
into DataLoaders and a model; ``STARTER_RECIPE`` is what ``prunekit init`` writes.

Reading and validating a recipe imports no torch; the resolvers (:mod:`.sources`) are
imported on first use.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .loading import check_paths, load_recipe, parse_recipe
from .marked import Marked, load_marked
from .pyimport import ResolveError, import_callable
from .schema import (
    BudgetSpec,
    DataSpec,
    DistillSpec,
    EvaluationSpec,
    FinetuneSpec,
    ModelSpec,
    NoiseSpec,
    OutputSpec,
    PruneSpec,
    Recipe,
    RecoverySpec,
    SearchSpec,
    StrategySpec,
    TrainSpec,
)
from .template import STARTER_RECIPE, write_starter

if TYPE_CHECKING:
    from .sources import (
        DataBundle,
        available_model_sources,
        build_recipe_model,
        load_weights_file,
        model_factory,
        register_model_source,
        resolve_data,
    )

_SOURCES = {
    "DataBundle", "available_model_sources", "build_recipe_model", "load_weights_file",
    "model_factory", "register_model_source", "resolve_data",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    """The resolvers of :mod:`.sources` (they import torch) on first access (PEP 562)."""
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(".sources", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "STARTER_RECIPE",
    "BudgetSpec",
    "DataBundle",
    "DataSpec",
    "DistillSpec",
    "EvaluationSpec",
    "FinetuneSpec",
    "Marked",
    "ModelSpec",
    "NoiseSpec",
    "OutputSpec",
    "PruneSpec",
    "Recipe",
    "RecoverySpec",
    "ResolveError",
    "SearchSpec",
    "StrategySpec",
    "TrainSpec",
    "available_model_sources",
    "build_recipe_model",
    "check_paths",
    "import_callable",
    "load_marked",
    "load_recipe",
    "load_weights_file",
    "model_factory",
    "parse_recipe",
    "register_model_source",
    "resolve_data",
    "write_starter",
]
