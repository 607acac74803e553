"""Row plumbing shared by the deploy room: pick rows of nested inputs, read a model's logits,
gather whole datasets into one batch, count the MACs of one row."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from prunekit._modelio import batch_size, call_model, map_tensors, model_device, to_device
from prunekit.cost import count_macs
from prunekit.errors import DataError
from prunekit.evaluation.predictions import split_batch
from prunekit.outputs import main_output

from .confidence import check_logits

__all__ = [
    "as_inputs",
    "concat_rows",
    "data_batches",
    "first_rows",
    "logits_of",
    "macs_per_row",
    "rows_of",
    "take_rows",
]


def as_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The model inputs a ``forward(*args, **kwargs)`` received, in prunekit's input form."""
    if kwargs:
        if args:
            raise DataError(
                f"got {len(args)} positional and {len(kwargs)} keyword inputs; pass either "
                "one tensor, positional inputs, or keyword inputs"
            )
        return dict(kwargs)
    if len(args) == 1:
        return args[0]
    return tuple(args)


def rows_of(inputs: Any, where: str) -> int:
    """The batch size of ``inputs`` (its first tensor's dim 0); DataError when there is none."""
    n = batch_size(inputs)
    if n < 1:
        raise DataError(
            f"{where}: the inputs hold no tensor with a batch dimension (got "
            f"{type(inputs).__name__}); pass a tensor (N, ...), a tuple or a dict of them"
        )
    return n


def take_rows(inputs: Any, rows: torch.Tensor, n: int) -> Any:
    """``inputs`` with every tensor whose dim 0 is ``n`` indexed by ``rows`` (a bool mask of
    length ``n`` or integer positions); other tensors and values as they are."""

    def pick(t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 0 or t.shape[0] != n:
            return t
        return t[rows.to(t.device)]

    return map_tensors(inputs, pick)


def logits_of(model: nn.Module, inputs: Any, where: str) -> torch.Tensor:
    """The logits ``model`` returns for ``inputs`` (moved to its device): the output itself,
    its ``logits``, or its first tensor."""
    out = main_output(call_model(model, to_device(inputs, model_device(model))))
    return check_logits(out, where)


def data_batches(data: Iterable[Any], where: str) -> Iterable[tuple[Any, torch.Tensor | None]]:
    """``(inputs, targets)`` of every batch of ``data`` (a DataLoader or iterable of batches)."""
    if isinstance(data, (torch.Tensor, dict)) or not isinstance(data, Iterable):
        raise DataError(
            f"{where}: data of type {type(data).__name__} is not an iterable of batches; pass "
            "a DataLoader (or list) yielding (inputs, targets) or inputs"
        )
    seen = False
    for batch in data:
        seen = True
        inputs, targets = split_batch(batch)
        yield inputs, None if targets is None else torch.as_tensor(targets).reshape(-1).cpu()
    if not seen:
        raise DataError(f"{where}: data yielded no batch; pass a non-empty DataLoader")


def concat_rows(parts: list[Any]) -> Any:
    """One batch from several input batches of the same structure (tensors concatenated)."""
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)
    if isinstance(first, dict):
        return {k: concat_rows([p[k] for p in parts]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(concat_rows([p[i] for p in parts]) for i in range(len(first)))
    return first


def first_rows(data: Iterable[Any], count: int, where: str) -> Any:
    """The inputs of the first ``count`` rows of ``data`` as one batch (fewer if it is short)."""
    parts: list[Any] = []
    total = 0
    for inputs, _ in data_batches(data, where):
        n = rows_of(inputs, where)
        keep = min(n, count - total)
        parts.append(take_rows(inputs, torch.arange(keep), n) if keep < n else inputs)
        total += keep
        if total >= count:
            break
    return concat_rows(parts)


def macs_per_row(model: nn.Module, inputs: Any) -> float:
    """MACs of one forward of ``model`` on ``inputs`` (prunekit's counter), per input row."""
    n = rows_of(inputs, "macs_per_row")
    return count_macs(model, to_device(inputs, model_device(model))) / n
