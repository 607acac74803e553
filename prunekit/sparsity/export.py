"""Compact storage of sparse weights: a safetensors file with values + a packed bitmask.

Each floating tensor is stored the smaller way: dense, or as its non-zero values plus one
bit per element (``numpy.packbits``). At 50% sparsity a float32 weight takes
``0.5 * 4 + 1/8 = 2.125`` bytes per element instead of 4. Tied tensors are stored once.
The bytes saved are on disk and in transfer; loading restores dense tensors, so a model
does not run faster on CPU because of this.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, PlanError
from .parametrize import has_masks, make_permanent

__all__ = ["SparseExport", "save_sparse", "load_sparse"]

_META_KEY = "prunekit_sparse"
_FORMAT = 1


@dataclass
class SparseExport:
    """What :func:`save_sparse` wrote.

    Attributes:
        path: the file.
        dense_bytes: the tensor bytes of the dense state dict (each tied tensor once), i.e.
            what a dense safetensors file holds apart from its small header.
        file_bytes: the size of the written file, header included.
        encodings: tensor name -> ``"dense"``, ``"bitmask"`` or ``"alias:<name>"``.
    """

    path: str
    dense_bytes: int
    file_bytes: int
    encodings: dict[str, str] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """``file_bytes / dense_bytes`` (below 1: smaller)."""
        return self.file_bytes / self.dense_bytes if self.dense_bytes else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "dense_bytes": self.dense_bytes,
            "file_bytes": self.file_bytes,
            "ratio": self.ratio,
            "encodings": dict(self.encodings),
        }


def _state_dict(obj: nn.Module | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        obj = (make_permanent(copy.deepcopy(obj)) if has_masks(obj) else obj).state_dict()
    if not isinstance(obj, Mapping):
        raise ConfigError(f"save_sparse needs a module or a state dict, got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ConfigError(f"state dict entries {bad[:5]} are not tensors; drop them first")
    return {str(k): v.detach().cpu() for k, v in obj.items()}


def _encode(name: str, t: torch.Tensor, out: dict[str, torch.Tensor]) -> str:
    flat = t.contiguous().reshape(-1)
    nonzero = flat != 0
    nnz = int(nonzero.sum())
    packed_bytes = (flat.numel() + 7) // 8 + nnz * t.element_size()
    if not t.is_floating_point() or packed_bytes >= flat.numel() * t.element_size():
        out[name] = flat.clone().reshape(t.shape)
        return "dense"
    out[f"{name}::values"] = flat[nonzero].clone()
    out[f"{name}::mask"] = torch.from_numpy(np.packbits(nonzero.numpy()))
    return "bitmask"


def save_sparse(model: nn.Module | Mapping[str, Any], path: str | os.PathLike[str]) -> SparseExport:
    """Write ``model``'s weights (masks baked in) compactly to a safetensors file.

    Example:
        >>> import torch, tempfile, os
        >>> from prunekit.sparsity import prune_weights, save_sparse, load_sparse
        >>> net = prune_weights(torch.nn.Linear(64, 64), 0.75)
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> rep = save_sparse(net, path)
        >>> rep.dense_bytes, rep.encodings["weight"], rep.file_bytes < rep.dense_bytes // 2
        (16640, 'bitmask', True)
        >>> torch.equal(load_sparse(path)["weight"], net.weight)
        True
    """
    from safetensors.torch import save_file

    state = _state_dict(model)
    tensors: dict[str, torch.Tensor] = {}
    encodings: dict[str, str] = {}
    meta: dict[str, Any] = {}
    first: dict[tuple[int, int, tuple[int, ...], str], str] = {}
    dense_bytes = 0
    for name, t in state.items():
        key = (
            t.untyped_storage().data_ptr(),
            int(t.storage_offset()),
            tuple(t.shape),
            str(t.dtype),
        )
        if key in first and t.numel() > 0:
            encodings[name] = f"alias:{first[key]}"
        else:
            first[key] = name
            dense_bytes += t.numel() * t.element_size()
            encodings[name] = _encode(name, t, tensors)
        meta[name] = {"encoding": encodings[name], "shape": list(t.shape), "dtype": str(t.dtype)}
    header = {_META_KEY: json.dumps({"format": _FORMAT, "tensors": meta})}
    save_file(tensors, str(path), metadata=header)
    return SparseExport(str(path), dense_bytes, Path(path).stat().st_size, encodings)


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise PlanError(f"unknown dtype {name!r} in a sparse export")
    return dtype


def load_sparse(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a file written by :func:`save_sparse` back into a dense state dict.

    Tied tensors come back as one tensor under each name; load the result with
    ``model.load_state_dict(...)`` into a plain (unmasked) model of the same shape.

    Example:
        >>> import torch, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "s.safetensors")
        >>> state = {"w": torch.tensor([[0.0, 2.0], [0.0, 0.0]]), "b": torch.ones(2)}
        >>> save_sparse(state, path).encodings
        {'w': 'bitmask', 'b': 'dense'}
        >>> load_sparse(path)["w"].tolist()
        [[0.0, 2.0], [0.0, 0.0]]
    """
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw = (f.metadata() or {}).get(_META_KEY)
        if raw is None:
            raise PlanError(f"{path} is not a prunekit sparse export (no {_META_KEY!r} header)")
        meta = json.loads(raw)["tensors"]
        out: dict[str, torch.Tensor] = {}
        for name, info in meta.items():
            enc, shape = info["encoding"], tuple(info["shape"])
            if enc == "dense":
                out[name] = f.get_tensor(name)
            elif enc == "bitmask":
                numel = int(np.prod(shape, dtype=np.int64))
                bits = np.unpackbits(f.get_tensor(f"{name}::mask").numpy())[:numel]
                dense = torch.zeros(numel, dtype=_dtype(info["dtype"]))
                dense[torch.from_numpy(bits.astype(bool))] = f.get_tensor(f"{name}::values")
                out[name] = dense.reshape(shape)
        for name, info in meta.items():
            if info["encoding"].startswith("alias:"):
                out[name] = out[info["encoding"].split(":", 1)[1]]
    return out
