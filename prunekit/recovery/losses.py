"""The task loss and the default validation metric of fine-tuning.

Conventions (shared with :mod:`prunekit.importance`): ``loss_fn(output, batch) -> scalar``;
batches are ``(x, y)`` tuples/lists or dicts of keyword inputs (Hugging Face style, labels
under ``"labels"``); outputs are logits tensors, tuples whose first item is the logits, or
objects/dicts with ``.loss`` / ``.logits``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RecoveryError
from ..outputs import main_output
from .batches import InputsFn, call_model, default_inputs, model_device, to_device

__all__ = ["LossFn", "accuracy", "labels_of", "logits_of", "task_loss"]

LossFn = Callable[[Any, Any], torch.Tensor]
"""``loss_fn(model_output, batch) -> scalar tensor``."""


def _field(output: Any, name: str) -> Any:
    if isinstance(output, dict):
        return output.get(name)
    return getattr(output, name, None)


def logits_of(output: Any) -> torch.Tensor:
    """The logits in a model output: the tensor itself, ``.logits``/``["logits"]``, or ``[0]``.

    Example:
        >>> import torch
        >>> logits_of((torch.zeros(2, 3), "aux")).shape
        torch.Size([2, 3])
    """
    found = main_output(output)
    if found is not None:
        return found
    raise RecoveryError(
        f"cannot find logits in a model output of type {type(output).__name__}; return a tensor, "
        "a tuple whose first item is the logits, or an object with .logits, or pass loss_fn= "
        "and metric= that read your output"
    )


def labels_of(batch: Any) -> torch.Tensor:
    """The targets of a batch: ``batch[1]`` of a tuple/list, ``batch["labels"]`` of a dict.

    Example:
        >>> import torch
        >>> labels_of((torch.zeros(2, 3), torch.tensor([1, 0]))).tolist()
        [1, 0]
    """
    if isinstance(batch, (tuple, list)) and len(batch) > 1:
        return torch.as_tensor(batch[1])
    if isinstance(batch, dict) and "labels" in batch:
        return torch.as_tensor(batch["labels"])
    raise RecoveryError(
        f"cannot find labels in a batch of type {type(batch).__name__}; yield (inputs, labels) "
        "tuples or dicts with a 'labels' key, or pass loss_fn=(output, batch) -> loss and metric="
    )


def task_loss(output: Any, batch: Any) -> torch.Tensor:
    """The default loss: the output's own ``.loss`` if it has one, else cross-entropy.

    Cross-entropy compares :func:`logits_of` ``output`` with :func:`labels_of` ``batch``;
    sequence logits ``(N, L, C)`` are flattened against labels ``(N, L)``, and label ``-100``
    is ignored (the Hugging Face convention).

    Example:
        >>> import torch
        >>> out = torch.tensor([[0.0, 0.0]])
        >>> round(float(task_loss(out, (None, torch.tensor([1])))), 4)  # ln 2
        0.6931
    """
    own = _field(output, "loss")
    if isinstance(own, torch.Tensor):
        return own
    logits = logits_of(output)
    labels = labels_of(batch).to(logits.device)
    if logits.dim() > 2:
        logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    return F.cross_entropy(logits, labels.long(), ignore_index=-100)


def accuracy(
    model: nn.Module,
    data: Iterable[Any],
    *,
    inputs: InputsFn | None = None,
    device: torch.device | str | None = None,
) -> float:
    """Top-1 accuracy of ``model`` on labelled ``data``, in eval mode (flags restored).

    Positions labelled ``-100`` are not counted (padding in sequence labelling).

    Args:
        model: a classifier returning logits.
        data: an iterable of labelled batches (see :func:`labels_of`).
        inputs: ``inputs(batch) -> model inputs``; default ``batch[0]`` / the dict itself.
        device: where to run; default the model's device.

    Returns:
        The fraction of correct predictions, in ``[0, 1]``.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(2, 2, bias=False)
        >>> _ = torch.nn.init.eye_(net.weight)
        >>> accuracy(net, [(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))])
        0.5
    """
    get_inputs = inputs or default_inputs
    device = device or model_device(model)
    flags = [(m, m.training) for m in model.modules()]
    correct, total = 0, 0
    model.eval()
    try:
        with torch.no_grad():
            for batch in data:
                batch = to_device(batch, device)
                logits = logits_of(call_model(model, get_inputs(batch)))
                labels = labels_of(batch).to(logits.device).reshape(-1)
                pred = logits.reshape(-1, logits.shape[-1]).argmax(-1)
                keep = labels != -100
                correct += int((pred[keep] == labels[keep]).sum())
                total += int(keep.sum())
    finally:
        for m, flag in flags:
            m.training = flag
    if total == 0:
        raise RecoveryError(
            "accuracy: the validation data yielded no labelled sample; pass a non-empty "
            "val_data of (inputs, labels) batches, or metric=callable(model) -> float"
        )
    return correct / total
