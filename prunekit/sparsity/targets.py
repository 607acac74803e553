"""Which weights weight-level pruning touches, and their input/output dims (asked of surgery)."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..allocation.candidates import ignored_names
from ..errors import ConfigError
from ..surgery import get_handler

__all__ = ["as_list", "weight_targets", "weight_of", "input_dim_of", "output_dim_of"]


def weight_of(module: nn.Module) -> torch.Tensor | None:
    """The module's effective ``weight`` (masked, if parametrized), if it has one of >= 2 dims.

    Example:
        >>> import torch
        >>> weight_of(torch.nn.Linear(2, 3)).shape, weight_of(torch.nn.LayerNorm(3))
        (torch.Size([3, 2]), None)
    """
    w: object = (
        getattr(module, "weight", None)
        if parametrize.is_parametrized(module, "weight")
        else module._parameters.get("weight")
    )
    return w if isinstance(w, torch.Tensor) and w.dim() >= 2 else None


def output_dim_of(module: nn.Module, weight: torch.Tensor) -> int:
    """The dim of ``weight`` that indexes the module's outputs (0 for Linear/Conv).

    Example:
        >>> import torch
        >>> t = torch.nn.ConvTranspose2d(4, 8, 3)
        >>> output_dim_of(t, t.weight), input_dim_of(t, t.weight)
        (1, 0)
    """
    return int(get_handler(module).output_dims(module).get("weight", 0)) % weight.dim()


def input_dim_of(module: nn.Module, weight: torch.Tensor) -> int | None:
    """The dim of ``weight`` that indexes the module's input features (1 for Linear/Conv),
    from the module's handler (:meth:`~prunekit.surgery.Handler.input_dim`).

    Example:
        >>> import torch
        >>> fc = torch.nn.Linear(2, 3)
        >>> input_dim_of(fc, fc.weight)
        1
    """
    return get_handler(module).input_dim(module, "weight", weight.dim())


def as_list(ignore: Any) -> list[Any]:
    """``ignore`` as a list: one module or name becomes a list of one."""
    return [ignore] if isinstance(ignore, (str, nn.Module)) else list(ignore)


def weight_targets(
    model: nn.Module, *, ignore: Any = (), layers: Iterable[str] | None = None
) -> dict[str, nn.Module]:
    """Modules (by qualified name) owning a weight of >= 2 dims, minus ``ignore``.

    Args:
        model: the model.
        ignore: modules or qualified names to leave dense (their children too), e.g. the
            embedding and the output head of a language model.
        layers: only modules whose name matches one of these globs (default: all).

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
        >>> list(weight_targets(net)), list(weight_targets(net, ignore=["2"]))
        (['0', '2'], ['0'])
    """
    skip = ignored_names(model, as_list(ignore))
    patterns = None if layers is None else [layers] if isinstance(layers, str) else list(layers)
    if patterns is not None and (not patterns or not all(isinstance(p, str) for p in patterns)):
        raise ConfigError(f"layers={patterns!r} must be module names or globs, e.g. ['fc*']")
    out: dict[str, nn.Module] = {}
    for name, mod in model.named_modules():
        if ".parametrizations." in f".{name}." or weight_of(mod) is None:
            continue
        if "" in skip or any(name == s or name.startswith(s + ".") for s in skip if s):
            continue
        if patterns is None or any(fnmatchcase(name, p) for p in patterns):
            out[name] = mod
    if patterns is not None and not out:
        raise ConfigError(
            f"layers={patterns!r} matches no module with a weight; names look like "
            f"{[n for n, m in model.named_modules() if weight_of(m) is not None][:6]}"
        )
    return out
