"""Nested example inputs <-> flat named tensors plus a JSON structure (no pickle).

A model's example inputs are a tensor, a tuple/list of them, or a dict of keyword inputs,
possibly nested and possibly holding plain scalars (``None``, bools, numbers, strings).
:func:`flatten_structure` splits such an object into named tensors (which go to a
safetensors file) and a JSON-serialisable spec that says where each tensor sits;
:func:`unflatten_structure` puts them back together.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ExportError

__all__ = ["flatten_structure", "unflatten_structure"]

_SCALARS = (type(None), bool, int, float, str)


def flatten_structure(
    obj: Any, *, where: str = "example_inputs"
) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split ``obj`` into a JSON spec and flat, independently stored tensors.

    Tensors are detached, moved to the CPU and made contiguous copies, so two inputs that
    share memory are stored as two tensors (safetensors refuses shared storage).

    Args:
        obj: A tensor, or tuples, lists and string-keyed dicts of tensors and scalars.
        where: What ``obj`` is called in error messages.

    Returns:
        ``(spec, tensors)``: ``spec`` is plain JSON data, ``tensors`` maps ``"t0"``,
        ``"t1"``, ... to tensors in depth-first order.

    Raises:
        ExportError: an element is of a type that cannot be stored, or a dict key is not a str.

    Example:
        >>> import torch
        >>> spec, tensors = flatten_structure({"image": torch.ones(1, 2), "n": 3})
        >>> spec
        {'dict': {'image': {'tensor': 't0'}, 'n': {'value': 3}}}
        >>> unflatten_structure(spec, tensors)["image"].shape
        torch.Size([1, 2])
    """
    tensors: dict[str, torch.Tensor] = {}
    spec = _flatten(obj, where, tensors)
    return spec, tensors


def _flatten(obj: Any, where: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = obj.detach().to("cpu").contiguous().clone()
        return {"tensor": name}
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise ExportError(
                f"{where} has dict key {bad[0]!r} of type {type(bad[0]).__name__}; keyword "
                "inputs must be keyed by str (the forward argument names)"
            )
        return {"dict": {k: _flatten(v, f"{where}[{k!r}]", tensors) for k, v in obj.items()}}
    if isinstance(obj, (tuple, list)):
        kind = "tuple" if isinstance(obj, tuple) else "list"
        return {kind: [_flatten(v, f"{where}[{i}]", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, _SCALARS):
        return {"value": obj}
    raise ExportError(
        f"{where} is a {type(obj).__name__}, which cannot be stored without pickle; example "
        "inputs must be tensors, or tuples/lists/str-keyed dicts of tensors and plain scalars"
    )


def unflatten_structure(spec: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Rebuild the object :func:`flatten_structure` split into ``spec`` and ``tensors``.

    Raises:
        ExportError: ``spec`` is malformed or names a tensor that ``tensors`` lacks.
    """
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ExportError(
            f"input structure entry {spec!r} is malformed (expected one of 'tensor', 'dict', "
            "'tuple', 'list', 'value'); the saved meta.json is damaged, save the model again"
        )
    ((kind, body),) = spec.items()
    if kind == "tensor":
        if body not in tensors:
            raise ExportError(
                f"input tensor {body!r} is listed in meta.json but missing from "
                f"inputs.safetensors (has {sorted(tensors)}); save the model again"
            )
        return tensors[body]
    if kind == "dict":
        return {k: unflatten_structure(v, tensors) for k, v in body.items()}
    if kind in ("tuple", "list"):
        items = [unflatten_structure(v, tensors) for v in body]
        return tuple(items) if kind == "tuple" else items
    if kind == "value":
        return body
    raise ExportError(
        f"input structure kind {kind!r} is unknown (valid: tensor, dict, tuple, list, value); "
        "the directory was written by another prunekit version, save the model again"
    )
