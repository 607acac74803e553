"""A recipe with its data and trained baseline resolved: what every pipeline command starts
from (``run``, ``sensitivity``, ``export``), in its own module so the commands can share it
without importing each other."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..recipe import DataBundle, Recipe, check_paths, resolve_data
from .baseline import prepare_baseline

__all__ = ["Log", "Session", "open_session"]

Log = Callable[[str], None]
"""A one-line progress sink, e.g. ``print``."""


@dataclass
class Session:
    """A recipe with its data and trained baseline resolved (shared by every command)."""

    recipe: Recipe
    data: DataBundle
    baseline: nn.Module
    baseline_source: str
    example: torch.Tensor
    seconds: float


def open_session(recipe: Recipe, *, progress: bool = True, log: Log | None = None) -> Session:
    """Resolve the data and the trained baseline of ``recipe`` (training it if needed).

    The files the recipe names are checked before any data is loaded.
    """
    say = log or (lambda _msg: None)
    start = time.perf_counter()
    check_paths(recipe)
    data = resolve_data(recipe)
    say(f"data {data.name}: input {data.input_shape}, {data.num_classes} classes")
    model, source = prepare_baseline(recipe, data, progress=progress)
    say(f"baseline {recipe.model.name}: {source}")
    return Session(recipe, data, model, source, data.example_inputs(), time.perf_counter() - start)
