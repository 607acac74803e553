"""Fit a model rebuilt from its config to the tensor shapes of a saved checkpoint.

A config describes one width per kind of layer. A model pruned with different widths per
block (adaptive allocation), with biases its config does not declare (FLAP's bias
compensation without the ``attention_bias``/``mlp_bias`` flags), or with decoder blocks
removed behind a stale ``num_hidden_layers`` cannot be rebuilt by ``from_config`` alone;
transformers then fails on the size mismatch or silently drops the tensors it does not
expect. :func:`fit_to_shapes` makes a model built from the config take the saved shapes:

1. decoder blocks (:func:`~prunekit.surgery.llama_blocks.decoder_layers`): trailing blocks
   the checkpoint does not hold are removed (:func:`~prunekit.surgery.llama_blocks.remove_blocks`)
   and each block is cut to the widths its saved projections imply
   (:func:`~prunekit.surgery.llama_blocks.fit_block`: the same surgery as a pruning cut,
   so ``num_key_value_groups`` & co. stay coherent);
2. every other tensor whose saved shape differs is replaced by an empty tensor of that
   shape (tied owners together) and its module's handler updates the module's attributes;
   a parameter slot that is ``None`` (``bias=False``) but saved gets a parameter, a bias
   that is not saved is removed.

The values are then loaded from the checkpoint; the fit only decides shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import torch
from safetensors import safe_open
from torch import nn

from ..errors import ConfigError, ExportError
from ..surgery import get_handler, tensor_owners
from ..surgery.llama_blocks import decoder_layers, fit_block, remove_blocks

__all__ = ["Shapes", "fit_to_shapes", "saved_shapes", "weight_files"]

V = TypeVar("V")

Shapes = dict[str, tuple[int, ...]]
"""Tensor name -> shape, as saved."""


def weight_files(folder: Path) -> list[Path]:
    """The ``model*.safetensors`` files of a ``save_pretrained`` folder (sorted)."""
    return sorted(folder.glob("model*.safetensors"))


def saved_shapes(folder: Path) -> Shapes:
    """Every tensor's shape in ``folder``'s safetensors files, read from their headers."""
    shapes: Shapes = {}
    for f in weight_files(folder):
        with safe_open(str(f), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                shapes[key] = tuple(handle.get_slice(key).get_shape())
    return shapes


def align_keys(model: nn.Module, saved: dict[str, V]) -> dict[str, V]:
    """``saved`` keyed like ``model``'s state: a task model saved from its base model (or
    the reverse) differs by ``base_model_prefix``."""
    own = model.state_dict(keep_vars=True).keys()
    prefix = getattr(model, "base_model_prefix", "")
    if prefix and saved and not (saved.keys() & own):
        return {f"{prefix}.{k}": v for k, v in saved.items()}
    return saved


def _module_name(model: nn.Module, target: nn.Module) -> str:
    return str(next(name for name, mod in model.named_modules() if mod is target))


def _fit_blocks(model: nn.Module, shapes: Shapes) -> list[str]:
    try:
        layers = decoder_layers(model)
    except ConfigError:
        return []  # not a decoder LLM: the tensor pass does everything
    prefix = _module_name(model, layers) + "."
    held = {int(k[len(prefix) :].split(".")[0]) for k in shapes if k.startswith(prefix)}
    if not held:
        return []
    count = max(held) + 1
    if held != set(range(count)) or count > len(layers):
        raise ExportError(
            f"the checkpoint holds decoder blocks {sorted(held)} under {prefix!r}, the config "
            f"builds {len(layers)}; save the model again (blocks must be numbered 0..n-1)"
        )
    changed = []
    if count < len(layers):
        remove_blocks(model, list(range(count, len(layers))))
        changed.append(f"{prefix[:-1]}: {count} blocks")
    for i, block in enumerate(layers):
        start = f"{prefix}{i}."
        own = {k[len(start) :]: v for k, v in shapes.items() if k.startswith(start)}
        try:
            if fit_block(block, own):
                changed.append(f"{prefix}{i}")
        except ConfigError as exc:
            raise ExportError(
                f"decoder block {prefix}{i} does not fit its saved shapes: {exc}"
            ) from exc
    return changed


def _slot_changes(path: str, mod: nn.Module, shapes: Shapes) -> list[tuple[str, str]]:
    """(key, attr) of ``mod``'s parameter slots to add (``None`` here, saved there) or to
    drop (a bias the checkpoint lacks although it holds the module's weight)."""
    out = []
    dot = f"{path}." if path else ""
    for attr, p in mod._parameters.items():
        key = dot + attr
        add = p is None and key in shapes
        drop = (
            p is not None
            and key not in shapes
            and f"{dot}weight" in shapes
            and get_handler(mod).role(mod, attr) == "bias"
        )
        if add or drop:
            out.append((key, attr))
    return out


def _fit_tensors(model: nn.Module, shapes: Shapes) -> list[str]:
    changed: list[str] = []
    touched: dict[int, nn.Module] = {}
    for name, holders in tensor_owners(model).items():
        want = shapes.get(name)
        mod0, attr0, is_param = holders[0]
        old = getattr(mod0, attr0)
        if want is None or tuple(old.shape) == want:
            continue
        new = torch.empty(want, dtype=old.dtype, device=old.device)
        value = nn.Parameter(new, requires_grad=old.requires_grad) if is_param else new
        for mod, attr, param in holders:
            (mod._parameters if param else mod._buffers)[attr] = value  # type: ignore[assignment]
            touched[id(mod)] = mod
        changed.append(name)
    for path, mod in model.named_modules():
        for key, attr in _slot_changes(path, mod, shapes):
            if mod._parameters[attr] is None:
                ref = next(iter(mod.parameters()), None)
                ref = next(iter(model.parameters())) if ref is None else ref
                new = torch.empty(shapes[key], dtype=ref.dtype, device=ref.device)
                mod._parameters[attr] = nn.Parameter(new)
            else:
                mod._parameters[attr] = None
            touched[id(mod)] = mod
            changed.append(key)
    for mod in touched.values():
        get_handler(mod).update(mod)
    return changed


def fit_to_shapes(model: nn.Module, shapes: Shapes) -> list[str]:
    """Make ``model`` (built from a config, possibly on the ``meta`` device) take the saved
    ``shapes`` (module docstring). Returns what changed (block paths, tensor names); empty
    when the config already describes the checkpoint.

    Raises:
        ExportError: The checkpoint's blocks or widths cannot be reached by cutting.
    """
    fitted = align_keys(model, dict(shapes))
    return _fit_blocks(model, fitted) + _fit_tensors(model, fitted)
