"""The trained baseline of a recipe: given weights, a cached training run, or a fresh one.

Training goes through :func:`prunekit.recovery.finetune` (same loop, same seeding). The
trained state_dict is cached in ``prunekit.data.cache_dir() / "baselines"`` under a hash of
everything that determines it (model, data and train sections, the user's factory files,
the torch version), so re-running a recipe, or pruning it another way, skips training.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from ..data import cache_dir
from ..recipe import DataBundle, Recipe, build_recipe_model, load_weights_file
from ..recipe.pyimport import source_digest
from ..recovery import finetune

__all__ = ["baseline_key", "baseline_path", "prepare_baseline"]


def baseline_key(recipe: Recipe) -> str:
    """A hash of what decides the trained baseline.

    Example:
        >>> from prunekit.recipe import parse_recipe
        >>> a = parse_recipe("model: {name: mlp}\\ndata: {name: iris}\\n")
        >>> b = parse_recipe("model: {name: mlp}\\ndata: {name: iris}\\ntrain: {epochs: 9}\\n")
        >>> len(baseline_key(a)), baseline_key(a) == baseline_key(b)
        (16, False)
    """
    payload = {
        "model": recipe.model.model_dump(mode="json"),
        "data": recipe.data.model_dump(mode="json"),
        "train": recipe.train.model_dump(mode="json", exclude={"cache"}),
        "sources": [
            source_digest(recipe.model.name, recipe.base_dir),
            source_digest(recipe.data.name, recipe.base_dir),
        ],
        "torch": torch.__version__.split("+")[0],
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def baseline_path(recipe: Recipe) -> Path:
    """Where the trained baseline of ``recipe`` is cached."""
    return cache_dir() / "baselines" / f"{baseline_key(recipe)}.safetensors"


def prepare_baseline(
    recipe: Recipe, data: DataBundle, *, progress: bool = True
) -> tuple[nn.Module, str]:
    """Build the model and give it trained weights; return it (eval mode) and where they came
    from: ``"weights"`` (``model.weights``), ``"cache"``, ``"trained"`` or ``"untrained"``
    (``train.epochs: 0`` and no weights).

    Training draws random numbers (PyTorch's global generator, the training loader's own
    shuffle generator) that loading from the cache does not; both are put back as they were
    before, so the rest of the run is the same whether the baseline was trained or loaded
    (a first, cold run of a recipe cuts and scores exactly like every later one).
    """
    rng = torch.get_rng_state()
    shuffle = getattr(data.train, "generator", None)
    shuffle_state = shuffle.get_state() if isinstance(shuffle, torch.Generator) else None
    try:
        return _prepare(recipe, data, progress)
    finally:
        torch.set_rng_state(rng)
        if isinstance(shuffle, torch.Generator) and shuffle_state is not None:
            shuffle.set_state(shuffle_state)


def _prepare(recipe: Recipe, data: DataBundle, progress: bool) -> tuple[nn.Module, str]:
    torch.manual_seed(recipe.data.seed)
    model = build_recipe_model(recipe, data.input_shape, data.num_classes)
    if recipe.model.weights is not None:
        load_weights_file(model, str(recipe.path(recipe.model.weights)))
        return model.eval(), "weights"
    if recipe.train.epochs == 0:
        return model.eval(), "untrained"
    cached = baseline_path(recipe)
    if recipe.train.cache and cached.is_file():
        try:
            load_model(model, str(cached))
            return model.eval(), "cache"
        except (RuntimeError, OSError):
            cached.unlink(missing_ok=True)  # stale or damaged: train again
    finetune(
        model, data.train, optimizer=recipe.train.optimizer, lr=recipe.train.lr,
        weight_decay=recipe.train.weight_decay, epochs=recipe.train.epochs,
        val_data=data.val, progress=progress, seed=recipe.data.seed,
    )  # fmt: skip
    if recipe.train.cache:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        save_model(model, str(tmp))
        tmp.replace(cached)
    return model.eval(), "trained"
