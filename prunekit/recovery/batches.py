"""Batches as users hand them over: a tensor, an ``(x, y)`` tuple/list, or a dict of kwargs.

This module imports nothing from prunekit but :mod:`prunekit.errors`, so the pruner can use
:func:`prunekit.recovery.recalibrate_bn` (which relies on it) without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

__all__ = [
    "kept_indices",
    "InputsFn",
    "batch_size",
    "call_model",
    "default_inputs",
    "limited",
    "model_device",
    "to_device",
]

InputsFn = Callable[[Any], Any]
"""``inputs(batch) -> model inputs`` (a tensor, a tuple of positional args, a dict of kwargs)."""


def default_inputs(batch: Any) -> Any:
    """The model inputs of a batch: ``batch[0]`` of a tuple/list, otherwise the batch itself.

    Example:
        >>> import torch
        >>> default_inputs((torch.ones(2, 3), torch.zeros(2))).shape
        torch.Size([2, 3])
        >>> sorted(default_inputs({"input_ids": torch.ones(1, 4)}))
        ['input_ids']
    """
    if isinstance(batch, (tuple, list)):
        return batch[0]
    return batch


def call_model(model: nn.Module, inputs: Any) -> Any:
    """``model(**inputs)`` for a dict, ``model(*inputs)`` for a tuple/list, else ``model(inputs)``.

    Example:
        >>> import torch
        >>> call_model(torch.nn.Linear(3, 2), torch.ones(4, 3)).shape
        torch.Size([4, 2])
    """
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def to_device(obj: Any, device: torch.device | str | None) -> Any:
    """Move every tensor of a nested tuple/list/dict to ``device`` (``None``: leave as is).

    Example:
        >>> import torch
        >>> to_device({"x": (torch.ones(1),)}, "cpu")["x"][0].device.type
        'cpu'
    """
    if device is None:
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def batch_size(inputs: Any) -> int:
    """The leading size of the first tensor found in ``inputs`` (0 if there is none).

    Example:
        >>> import torch
        >>> batch_size({"input_ids": torch.ones(5, 7)}), batch_size((torch.ones(3, 1),)), batch_size(4)
        (5, 3, 0)
    """
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.dim() else 1
    values: Iterable[Any] = ()
    if isinstance(inputs, dict):
        values = inputs.values()
    elif isinstance(inputs, (tuple, list)):
        values = inputs
    for v in values:
        n = batch_size(v)
        if n:
            return n
    return 0


def limited(data: Iterable[Any], batches: int | None) -> Iterator[Any]:
    """The first ``batches`` batches of ``data`` (all of them when ``None``).

    Example:
        >>> list(limited(range(5), 2))
        [0, 1]
    """
    for i, batch in enumerate(data):
        if batches is not None and i >= batches:
            return
        yield batch


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with neither).

    Example:
        >>> import torch
        >>> model_device(torch.nn.Linear(2, 2)).type
        'cpu'
    """
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def kept_indices(
    where: str, given: Sequence[int], width: int, original: int, unit: str
) -> list[int]:
    """``given`` as a list of ints, checked to be ``width`` distinct indices in
    ``[0, original)`` (the original units a pruned layer kept).

    Raises:
        ConfigError: naming ``where``, the indices and what they must be.

    Example:
        >>> kept_indices("kept_outputs['fc']", (0, 2), 2, 4, "rows")
        [0, 2]
    """
    idx = [int(i) for i in given]
    if len(idx) != width or len(set(idx)) != width or any(not 0 <= i < original for i in idx):
        raise ConfigError(
            f"{where} has {len(idx)} indices {idx[:6]}...; it needs {width} distinct indices "
            f"in [0, {original}) (the original {unit} kept)"
        )
    return idx
