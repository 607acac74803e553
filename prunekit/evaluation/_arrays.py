"""Input conversion for the metric functions (private to ``prunekit.evaluation``).

Metrics accept tensors, numpy arrays or nested lists; these helpers turn them into CPU tensors
and check shapes, raising :class:`~prunekit.errors.ConfigError` with the offending argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from prunekit.errors import ConfigError

__all__ = ["ArrayLike", "as_labels", "as_tensor", "check_rows", "class_probs"]

ArrayLike = torch.Tensor | np.ndarray | list[Any] | tuple[Any, ...]
"""What a metric accepts: a tensor, a numpy array, or a (nested) list or tuple of numbers."""


def as_tensor(values: ArrayLike, name: str) -> torch.Tensor:
    """``values`` as a detached CPU tensor (``name`` is used in error messages).

    Example:
        >>> as_tensor([1, 2], "targets")
        tensor([1, 2])
    """
    try:
        tensor = torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"{name} of type {type(values).__name__} cannot become a tensor ({exc}); pass a "
            "tensor, a numpy array or a list of numbers"
        ) from exc
    return tensor.detach().cpu()


def as_labels(values: ArrayLike, name: str) -> torch.Tensor:
    """Class indices from labels ``(N,)``, scores ``(N, C)`` (argmax) or binary logits ``(N, 1)``.

    A single-column score is a binary logit: label 1 where it is positive.

    Example:
        >>> as_labels([[0.1, 0.9], [0.8, 0.2]], "preds").tolist()
        [1, 0]
        >>> as_labels([[-2.0], [3.0]], "preds").tolist()
        [0, 1]
    """
    tensor = as_tensor(values, name)
    if tensor.dim() == 2 and tensor.shape[1] == 1:
        return (tensor[:, 0] > 0).long()
    if tensor.dim() == 2:
        return tensor.argmax(dim=1)
    if tensor.dim() != 1:
        raise ConfigError(
            f"{name} has shape {tuple(tensor.shape)}; pass class indices (N,) or scores (N, C)"
        )
    if tensor.is_floating_point():
        if not torch.equal(tensor, tensor.round()):
            raise ConfigError(
                f"{name} is a 1-D float tensor with non-integer values; pass class indices "
                "(N,), or scores of shape (N, C)"
            )
        tensor = tensor.long()
    if tensor.numel() and int(tensor.min()) < 0:
        raise ConfigError(f"{name} holds a negative class index ({int(tensor.min())})")
    return tensor.long()


def class_probs(scores: ArrayLike, name: str) -> torch.Tensor:
    """Class probabilities ``(N, C)`` from logits (softmax) or binary logits ``(N,)``/``(N, 1)``.

    Log-probabilities work too (their softmax is the probabilities themselves).

    Example:
        >>> class_probs([[0.0, 0.0]], "logits").tolist()
        [[0.5, 0.5]]
        >>> class_probs([0.0], "logits").tolist()
        [[0.5, 0.5]]
    """
    tensor = as_tensor(scores, name).double()
    if tensor.dim() == 1:
        tensor = tensor[:, None]
    if tensor.dim() != 2:
        raise ConfigError(f"{name} has shape {tuple(tensor.shape)}; pass logits of shape (N, C)")
    if tensor.shape[1] == 1:
        positive = torch.sigmoid(tensor[:, 0])
        return torch.stack([1.0 - positive, positive], dim=1)
    return torch.softmax(tensor, dim=1)


def check_rows(first: torch.Tensor, second: torch.Tensor, names: str) -> int:
    """Check both tensors have the same (non-zero) number of rows and return it.

    Example:
        >>> import torch
        >>> check_rows(torch.zeros(3), torch.zeros(3, 2), "preds and targets")
        3
    """
    rows = int(first.shape[0]) if first.dim() else 1
    other = int(second.shape[0]) if second.dim() else 1
    if rows != other:
        raise ConfigError(
            f"{names} have {rows} and {other} rows; they must describe the same samples"
        )
    if rows == 0:
        raise ConfigError(f"{names} are empty; metrics need at least one sample")
    return rows
