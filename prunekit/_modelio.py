"""Model I/O: how prunekit calls a model, moves its inputs, and reads its outputs.

The one place for these rules (every other module imports them from here; it imports nothing
from prunekit, so any layer may use it):

- inputs are a tensor (``model(x)``), a tuple/list of positional inputs (``model(*x)``) or a
  dict of keyword inputs (``model(**x)``); a batch from a loader is ``batch[0]`` of a
  tuple/list (``(x, y)``), else the batch itself;
- outputs are any nesting of tensors, tuples, lists, dicts and Hugging Face ``ModelOutput``s,
  read as the flat list of their tensors in order;
- a check runs the model in eval mode under ``no_grad``; afterwards every submodule gets back
  its own training flag (set directly: a module's ``train()`` override is not re-run).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

__all__ = [
    "InputsFn",
    "batch_size",
    "call_model",
    "default_inputs",
    "eval_mode",
    "flatten_tensors",
    "map_tensors",
    "model_device",
    "run_outputs",
    "to_device",
]

InputsFn = Callable[[Any], Any]
"""``inputs(batch) -> model inputs`` (a tensor, a tuple of positional args, a dict of kwargs)."""


def flatten_tensors(obj: Any) -> list[torch.Tensor]:
    """All tensors in a nested structure of tuples, lists, dicts and ``ModelOutput``s, in order.

    Example:
        >>> [t.shape[0] for t in flatten_tensors({"a": torch.ones(2), "b": (torch.ones(3), 4)})]
        [2, 3]
    """
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in flatten_tensors(v)]
    if isinstance(obj, (tuple, list)):
        return [t for v in obj for t in flatten_tensors(v)]
    if hasattr(obj, "to_tuple"):  # Hugging Face ModelOutput
        return flatten_tensors(obj.to_tuple())
    return []


def call_model(model: Any, inputs: Any) -> Any:
    """``model(**inputs)`` for a dict, ``model(*inputs)`` for a tuple/list, else ``model(inputs)``.

    Example:
        >>> call_model(torch.nn.Linear(3, 2), torch.ones(4, 3)).shape
        torch.Size([4, 2])
    """
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def default_inputs(batch: Any) -> Any:
    """The model inputs of a batch: ``batch[0]`` of a tuple/list, otherwise the batch itself.

    Example:
        >>> default_inputs((torch.ones(2, 3), torch.zeros(2))).shape
        torch.Size([2, 3])
        >>> sorted(default_inputs({"input_ids": torch.ones(1, 4)}))
        ['input_ids']
    """
    if isinstance(batch, (tuple, list)):
        return batch[0]
    return batch


def to_device(obj: Any, device: torch.device | str | None) -> Any:
    """Every tensor of a nested tuple/list/namedtuple/dict moved to ``device`` (``None``:
    ``obj`` as it is). Copies to an accelerator do not block; copies to the CPU do (a
    non-blocking one could be read before it lands).

    Example:
        >>> to_device({"x": (torch.ones(1),)}, "cpu")["x"][0].device.type
        'cpu'
    """
    if device is None:
        return obj
    non_blocking = torch.device(device).type != "cpu"
    return map_tensors(obj, lambda t: t.to(device, non_blocking=non_blocking))


def map_tensors(obj: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``obj`` with ``fn`` applied to every tensor of its nested tuples, lists, namedtuples and
    dicts (other values as they are).

    Example:
        >>> map_tensors({"x": [torch.ones(1)], "n": 3}, lambda t: t * 2)
        {'x': [tensor([2.])], 'n': 3}
    """
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(map_tensors(v, fn) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(map_tensors(v, fn) for v in obj)
    return obj


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with neither).

    Example:
        >>> model_device(torch.nn.Linear(2, 2)).type
        'cpu'
    """
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def batch_size(inputs: Any) -> int:
    """The leading size of the first tensor found in ``inputs`` (0 if there is none; 1 for
    a scalar).

    Example:
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


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode; give each its own training flag back afterwards
    (also when the block raises).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2)).train()
        >>> with eval_mode(model):
        ...     model.training, model[0].training
        (False, False)
        >>> model.training
        True
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def run_outputs(model: nn.Module, inputs: Any) -> list[torch.Tensor]:
    """The flat, detached outputs of one forward of ``model`` on ``inputs`` (eval mode, no
    grad): what every check of a cut compares.

    Example:
        >>> [tuple(t.shape) for t in run_outputs(torch.nn.Linear(3, 2), torch.ones(4, 3))]
        [(4, 2)]
    """
    with torch.no_grad(), eval_mode(model):
        return [t.detach() for t in flatten_tensors(call_model(model, inputs))]
