"""Checks every entry point runs on the model it is given, before any work: it is an
``nn.Module``, its tensors hold real values (not the meta device), and they are finite;
and, once it ran, its outputs are finite too."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .errors import ConfigError, NonFiniteError

__all__ = ["check_model", "check_finite_outputs", "non_finite"]


def non_finite(named: Any) -> list[str]:
    """``name (n nan, m inf)`` for every floating tensor of ``named`` ((name, tensor) pairs)
    that holds NaN or infinity."""
    out = []
    for name, t in named:
        if not isinstance(t, torch.Tensor) or t.is_meta or not t.is_floating_point():
            continue
        if not bool(torch.isfinite(t).all()):
            nan = int(t.isnan().sum())
            out.append(f"{name} ({nan} nan, {int(t.isinf().sum())} inf)")
    return out


def check_model(model: Any, where: str = "model") -> nn.Module:
    """``model`` if it can be analysed and pruned, else a ConfigError / NonFiniteError.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(2, 2)
        >>> check_model(net) is net
        True
        >>> _ = net.weight.data.fill_(float("nan"))
        >>> check_model(net)
        Traceback (most recent call last):
        ...
        prunekit.errors.NonFiniteError: model has non-finite weights: weight (4 nan, 0 inf); scoring and verifying a cut need finite values: fix or reload them (e.g. torch.nan_to_num_ on each, or a checkpoint from before the divergence)
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"{where} must be a torch.nn.Module, got {type(model).__name__} ({model!r:.80}); "
            "pass the model object itself (for a state_dict, build the model and load it first)"
        )
    tensors = [*model.named_parameters(), *model.named_buffers()]
    meta = [n for n, t in tensors if t.is_meta]
    if meta:
        raise ConfigError(
            f"{where} has {len(meta)} tensors on the meta device ({', '.join(meta[:4])}); they "
            "hold no values to score or verify: materialise them first (model.to_empty("
            "device='cpu') then load_state_dict(...), or build the model without device='meta')"
        )
    bad = non_finite(tensors)
    if bad:
        raise NonFiniteError(
            f"{where} has non-finite weights: {_listed(bad, 6)}; scoring and verifying a cut need finite values: fix or reload them (e.g. "
            "torch.nan_to_num_ on each, or a checkpoint from before the divergence)"
        )
    return model


def check_finite_outputs(outputs: list[torch.Tensor], inputs: list[torch.Tensor]) -> None:
    """Raise NonFiniteError if the model's outputs on the example inputs are not finite."""
    bad = non_finite((f"output {i}", t) for i, t in enumerate(outputs))
    if not bad:
        return
    bad_in = non_finite((f"input {i}", t) for i, t in enumerate(inputs))
    why = (
        f"the example inputs hold non-finite values ({', '.join(bad_in[:4])}): pass finite ones"
        if bad_in
        else "the weights are finite, so the forward overflows or divides by zero on these "
        "inputs: check the model on them (torch.autograd.detect_anomaly helps)"
    )
    raise NonFiniteError(
        f"the model's outputs on the example inputs are not finite ({', '.join(bad[:4])}), so "
        f"no cut can be verified; {why}"
    )


def check_scores(criterion: str, named_scores: Any) -> None:
    """Raise NonFiniteError if a criterion's scores ((group key, tensor) pairs) hold NaN or
    infinity: NaN ranks units arbitrarily.

    Example:
        >>> import torch
        >>> check_scores("l2", [("fc.weight:0", torch.ones(3))])
        >>> check_scores("taylor", [("fc.weight:0", torch.tensor([1.0, float("nan")]))])
        Traceback (most recent call last):
        ...
        prunekit.errors.NonFiniteError: importance 'taylor' gave non-finite scores for groups fc.weight:0 (1 nan, 0 inf); the weights are finite, so its calibration data or loss produced them: check the batches for NaN/inf (or use a data-free criterion such as 'l2')
    """
    bad = non_finite(named_scores)
    if bad:
        raise NonFiniteError(
            f"importance {criterion!r} gave non-finite scores for groups {_listed(bad, 4)}"
            "; the weights are finite, so its calibration data or loss produced them: "
            "check the batches for NaN/inf (or use a data-free criterion such as 'l2')"
        )


def _listed(names: list[str], most: int) -> str:
    """``a, b and 3 more``: the first ``most`` names and how many were left out."""
    rest = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + rest
