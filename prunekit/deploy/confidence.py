"""How sure a classifier is of one row: the scores a cascade routes on.

Every score is computed from the row's logits and lies in ``[0, 1]``, higher meaning more
confident, so one rule serves all of them: a stage keeps a row when its confidence is at
least the stage's threshold, and passes it on otherwise.

========== ==================================================================
name       confidence of a row with class probabilities ``p`` (softmax)
========== ==================================================================
max_prob   ``max_c p_c``
margin     ``p_(1) - p_(2)``: the top probability minus the runner-up
entropy    ``1 - H(p) / log C``: one for a one-hot ``p``, zero for uniform
========== ==================================================================

A single logit per row (``(N,)`` or ``(N, 1)``, a binary classifier) stands for the two
classes ``[0, z]``, i.e. ``p = [1 - sigmoid(z), sigmoid(z)]``.

The functions are TorchScript-compatible: the exported cascade (:mod:`.script`) runs the
same code as the eager one, so both route every row alike.
"""

from __future__ import annotations

import math

import torch

from prunekit.errors import ConfigError, DataError

__all__ = ["CONFIDENCES", "class_logits", "confidence", "confidence_code", "confidence_of"]

CONFIDENCES: tuple[str, ...] = ("max_prob", "margin", "entropy")
"""The confidence scores, by name; their position is the code the TorchScript form uses."""


def confidence_code(name: str) -> int:
    """The integer code of a confidence name (its index in :data:`CONFIDENCES`).

    Raises:
        ConfigError: ``name`` is not one of :data:`CONFIDENCES`.

    Example:
        >>> confidence_code("margin")
        1
    """
    if not isinstance(name, str) or name not in CONFIDENCES:
        raise ConfigError(
            f"confidence={name!r} is not a confidence score; use one of {list(CONFIDENCES)}"
        )
    return CONFIDENCES.index(name)


def class_logits(logits: torch.Tensor) -> torch.Tensor:
    """``(N, C)`` logits with ``C >= 2``: a single binary logit ``z`` becomes ``[0, z]``.

    Example:
        >>> class_logits(torch.tensor([2.0, -1.0])).tolist()
        [[0.0, 2.0], [0.0, -1.0]]
    """
    if logits.dim() == 1:
        logits = logits.unsqueeze(-1)
    if logits.size(-1) == 1:
        logits = torch.cat([torch.zeros_like(logits), logits], dim=-1)
    return logits


def confidence_of(logits: torch.Tensor, kind: int) -> torch.Tensor:
    """The confidence (code ``kind``, see :data:`CONFIDENCES`) of every row of ``logits``.

    TorchScript-compatible; :func:`confidence` is the checked, named entry point.
    """
    logits = class_logits(logits).float()
    probs = torch.softmax(logits, dim=-1)
    if kind == 0:
        return probs.amax(dim=-1)
    if kind == 1:
        top = torch.topk(probs, 2, dim=-1)[0]
        return top[:, 0] - top[:, 1]
    entropy = -(probs * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
    return (1.0 - entropy / math.log(logits.size(-1))).clamp(0.0, 1.0)


def confidence(logits: torch.Tensor, kind: str = "max_prob") -> torch.Tensor:
    """The confidence of every row of ``logits`` (``(N, C)``, ``(N, 1)`` or ``(N,)``).

    Args:
        logits: A classifier's logits, one row per input.
        kind: ``"max_prob"``, ``"margin"`` or ``"entropy"`` (see the module doc).

    Returns:
        A float tensor ``(N,)`` in ``[0, 1]``.

    Raises:
        ConfigError: ``kind`` is unknown.
        DataError: ``logits`` is not a floating-point tensor of 1 or 2 dims.

    Example:
        >>> logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]])  # p = (.5,.5), (.25,.75)
        >>> confidence(logits, "max_prob").round(decimals=4).tolist()
        [0.5, 0.75]
        >>> confidence(logits, "margin").round(decimals=4).tolist()
        [0.0, 0.5]
        >>> confidence(logits, "entropy")[0].item()
        0.0
    """
    code = confidence_code(kind)
    check_logits(logits, "logits")
    return confidence_of(logits, code)


def check_logits(logits: object, where: str) -> torch.Tensor:
    """``logits`` itself when it is a floating tensor ``(N,)``, ``(N, 1)`` or ``(N, C)``.

    Raises:
        DataError: naming ``where`` and what was found instead.
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        found = type(logits).__name__ if not isinstance(logits, torch.Tensor) else logits.dtype
        raise DataError(
            f"{where} is a {found}, not floating-point logits; the model must return class "
            "logits (N, C), or pass output_fn= where offered to pick them from its output"
        )
    if logits.dim() not in (1, 2):
        raise DataError(
            f"{where} has shape {tuple(logits.shape)}; a classifier's logits are (N, C) or "
            "(N,) for one binary logit: flatten or pool the model's output first"
        )
    return logits
