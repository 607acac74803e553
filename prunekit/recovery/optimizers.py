"""Optimizers for fine-tuning: a registry of named builders, or the user's own factory.

Built-ins (``finetune(optimizer=...)``): ``"sgd"`` (with Nesterov-free ``momentum``),
``"adam"`` and ``"adamw"`` (which ignore ``momentum``). Weight decay applies to weight
matrices and kernels only: 1-D parameters (biases, normalisation scales and shifts) get none,
the usual practice for recovering a pruned network. A factory
``callable(param_groups) -> torch.optim.Optimizer`` is used as is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, RegistryError

__all__ = [
    "OptimizerBuilder",
    "OptimizerFactory",
    "OptimizerSpec",
    "available_optimizers",
    "build_optimizer",
    "register_optimizer",
]

OptimizerBuilder = Callable[[list[dict[str, Any]], float, float, float], torch.optim.Optimizer]
"""``builder(param_groups, lr, momentum, weight_decay) -> optimizer`` (registered by name)."""

OptimizerFactory = Callable[[list[dict[str, Any]]], torch.optim.Optimizer]
"""``factory(param_groups) -> optimizer``, passed directly as ``optimizer=``."""

OptimizerSpec = str | OptimizerFactory

_OPTIMIZERS: dict[str, OptimizerBuilder] = {
    "sgd": lambda g, lr, mom, wd: torch.optim.SGD(g, lr=lr, momentum=mom, weight_decay=wd),
    "adam": lambda g, lr, mom, wd: torch.optim.Adam(g, lr=lr, weight_decay=wd),
    "adamw": lambda g, lr, mom, wd: torch.optim.AdamW(g, lr=lr, weight_decay=wd),
}


def register_optimizer(name: str, builder: OptimizerBuilder) -> None:
    """Add an optimizer under ``name``.

    Raises:
        RegistryError: ``name`` is taken.

    Example:
        >>> import torch
        >>> register_optimizer("rmsprop_doc", lambda g, lr, m, wd: torch.optim.RMSprop(g, lr=lr))
        >>> "rmsprop_doc" in available_optimizers()
        True
    """
    if name in _OPTIMIZERS:
        raise RegistryError(
            f"optimizer {name!r} is already registered; pick another name (taken: "
            f"{available_optimizers()})"
        )
    _OPTIMIZERS[name] = builder


def available_optimizers() -> list[str]:
    """The registered optimizer names, sorted.

    Example:
        >>> {"adam", "adamw", "sgd"} <= set(available_optimizers())
        True
    """
    return sorted(_OPTIMIZERS)


def build_optimizer(
    spec: OptimizerSpec,
    model: nn.Module,
    extra: Iterable[nn.Parameter] = (),
    *,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """An optimizer over ``model``'s trainable parameters and ``extra`` ones.

    ``extra`` (e.g. distillation projections) form their own group, with weight decay.

    Raises:
        RegistryError: ``spec`` names no registered optimizer.
        ConfigError: the model has no trainable parameter, or the factory returns something
            that is not an optimizer.

    Example:
        >>> import torch
        >>> opt = build_optimizer("sgd", torch.nn.Linear(3, 2), lr=0.1, weight_decay=1e-4)
        >>> [(len(g["params"]), g["weight_decay"]) for g in opt.param_groups]
        [(1, 0.0001), (1, 0.0)]
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(
            f"{type(model).__name__} has no trainable parameter (all requires_grad=False); "
            "unfreeze what should be fine-tuned"
        )
    groups: list[dict[str, Any]] = [
        {"params": [p for p in params if p.dim() > 1]},
        {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0},
        {"params": list(extra)},
    ]
    groups = [g for g in groups if g["params"]]
    if callable(spec) and not isinstance(spec, str):
        optimizer = spec([{"params": g["params"]} for g in groups])
    else:
        if spec not in _OPTIMIZERS:
            raise RegistryError(
                f"optimizer={spec!r} is unknown; use one of {available_optimizers()}, or pass "
                "a factory callable(param_groups) -> torch.optim.Optimizer"
            )
        optimizer = _OPTIMIZERS[spec](groups, lr, momentum, weight_decay)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(
            f"the optimizer factory returned {type(optimizer).__name__}, not a "
            "torch.optim.Optimizer; return e.g. torch.optim.SGD(param_groups, lr=0.01)"
        )
    return optimizer
