"""A model's ``state_dict`` in one safetensors file, with tied tensors stored once.

safetensors refuses tensors that share memory. Tied weights (an embedding shared with the
output head) are exact aliases: the file keeps one name and its header records every alias
(``prunekit.tied``: alias -> kept name), so loading restores each name. Tensors that overlap
without being exact aliases are stored as independent copies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ..errors import ExportError

__all__ = ["save_weights", "load_weights", "read_weights"]

TIED_KEY = "prunekit.tied"


def _alias_key(t: torch.Tensor) -> tuple[Any, ...]:
    return (
        t.untyped_storage().data_ptr(),
        t.storage_offset(),
        tuple(t.shape),
        t.stride(),
        t.dtype,
        str(t.device),
    )


def dedupe_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Split ``state`` into tensors to store and ``{alias: kept name}`` for exact aliases.

    Example:
        >>> w = torch.ones(3, 2)
        >>> kept, tied = dedupe_state({"emb.weight": w, "head.weight": w, "b": w[0]})
        >>> sorted(kept), tied
        (['b', 'emb.weight'], {'head.weight': 'emb.weight'})
    """
    kept: dict[str, torch.Tensor] = {}
    tied: dict[str, str] = {}
    first: dict[tuple[Any, ...], str] = {}
    storages: set[int] = set()
    for name, tensor in state.items():
        t = tensor.detach()
        key = _alias_key(t)
        if t.numel() > 0 and key in first:
            tied[name] = first[key]
            continue
        ptr = t.untyped_storage().data_ptr()
        if t.numel() == 0 or ptr in storages or not t.is_contiguous():
            t = t.contiguous().clone()  # its own storage: safetensors stores no overlaps
        else:
            storages.add(ptr)
            first[key] = name
        kept[name] = t.to("cpu")
    return kept, tied


def save_weights(model: nn.Module, path: str | Path) -> dict[str, str]:
    """Write ``model.state_dict()`` to ``path`` as safetensors; return the tied aliases.

    Example:
        >>> import tempfile, os
        >>> net = torch.nn.Linear(2, 3)
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_weights(net, path)
        {}
        >>> sorted(read_weights(path))
        ['bias', 'weight']
    """
    kept, tied = dedupe_state(model.state_dict())
    save_file(kept, str(path), metadata={TIED_KEY: json.dumps(tied)})
    return tied


def read_weights(
    path: str | Path, *, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Every tensor of the safetensors file at ``path``, tied aliases restored.

    Raises:
        ExportError: the file is missing or not a valid safetensors file.
    """
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ExportError(
            f"cannot read weights from {path} ({exc}); the file is missing or damaged, "
            "save the model again with prunekit.export.save"
        ) from exc
    for alias, kept in json.loads(meta.get(TIED_KEY, "{}")).items():
        tensors[alias] = tensors[kept]
    return tensors


def load_weights(
    model: nn.Module,
    path: str | Path,
    *,
    strict: bool = True,
    device: str | torch.device = "cpu",
) -> None:
    """Copy the weights stored at ``path`` into ``model`` (shapes must already match).

    Raises:
        ExportError: a tensor's shape differs from the model's, or (``strict``) a tensor is
            missing from the file or the file has one the model lacks. The message names it.
    """
    stored = read_weights(path, device=device)
    expected = model.state_dict()
    wrong = [
        f"{name!r}: file {tuple(t.shape)}, model {tuple(expected[name].shape)}"
        for name, t in stored.items()
        if name in expected and t.shape != expected[name].shape
    ]
    if wrong:
        raise ExportError(
            f"{len(wrong)} tensor(s) of {path} do not fit the rebuilt model ({'; '.join(wrong[:4])}); "
            "the model factory builds another architecture or configuration than the one saved, "
            "pass a factory that builds the same unpruned model"
        )
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if strict and (missing or unexpected):
        raise ExportError(
            f"the weights in {path} and the rebuilt model disagree: missing from the file "
            f"{missing[:6]}, not in the model {unexpected[:6]}; pass a factory that builds the "
            "saved architecture, or strict=False to load the tensors both have"
        )
    model.load_state_dict({k: v for k, v in stored.items() if k in expected}, strict=False)
