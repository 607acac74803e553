"""Batches as users hand them over: a tensor, an ``(x, y)`` tuple/list, or a dict of kwargs.

How a batch becomes model inputs, how inputs move and how a model is called are the rules of
:mod:`prunekit._modelio`, re-exported here; this module adds what only recovery needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .._modelio import InputsFn, batch_size, call_model, default_inputs, model_device, to_device
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
