"""Masks that stay applied during fine-tuning (``torch.nn.utils.parametrize``), then bake in.

While a :class:`WeightMask` is registered, ``module.weight`` is ``original * mask``: the
forward pass, the gradients (zero at pruned positions) and any optimizer step all leave the
pruned weights at zero, and the mask is saved in the ``state_dict`` as a buffer.
:func:`make_permanent` removes the parametrization and leaves a plain module whose
``weight`` holds the zeros.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import ConfigError

__all__ = ["WeightMask", "apply_mask", "masks_of", "make_permanent", "has_masks"]


class WeightMask(nn.Module):
    """A parametrization ``weight -> weight * mask`` (``mask``: bool buffer, True = keep).

    Example:
        >>> import torch
        >>> from torch.nn.utils import parametrize
        >>> fc = torch.nn.Linear(2, 1)
        >>> _ = parametrize.register_parametrization(
        ...     fc, "weight", WeightMask(torch.tensor([[True, False]])))
        >>> fc.weight[0, 1].item()
        0.0
    """

    mask: torch.Tensor

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().to(torch.bool).clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.masked_fill(~self.mask, 0.0)  # +0.0 where pruned, gradient 0 there


def _plist(module: nn.Module) -> nn.ModuleList:
    return cast(nn.ModuleDict, module.parametrizations)["weight"]  # type: ignore[return-value]


def _mask_of(module: nn.Module) -> WeightMask | None:
    if not parametrize.is_parametrized(module, "weight"):
        return None
    found = [p for p in _plist(module) if isinstance(p, WeightMask)]
    return found[0] if found else None


def apply_mask(module: nn.Module, mask: torch.Tensor) -> None:
    """Register (or tighten: logical AND with the existing one) the weight mask of ``module``.

    Example:
        >>> import torch
        >>> fc = torch.nn.Linear(2, 2)
        >>> apply_mask(fc, torch.tensor([[True, False], [True, True]]))
        >>> apply_mask(fc, torch.tensor([[True, True], [False, True]]))
        >>> int((fc.weight == 0).sum())
        2
    """
    weight = module.weight
    if not isinstance(weight, torch.Tensor) or tuple(mask.shape) != tuple(weight.shape):
        raise ConfigError(
            f"mask of shape {tuple(mask.shape)} does not fit {type(module).__name__}.weight "
            f"of shape {tuple(getattr(weight, 'shape', ()))}"
        )
    existing = _mask_of(module)
    if existing is not None:
        existing.mask &= mask.to(existing.mask.device, torch.bool)
        return
    parametrize.register_parametrization(module, "weight", WeightMask(mask.to(weight.device)))


def masks_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """The current keep-masks by module name.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
        >>> apply_mask(net[1], torch.tensor([[True, False]]))
        >>> {k: v.tolist() for k, v in masks_of(net).items()}, has_masks(net[0])
        ({'1': [[True, False]]}, False)
    """
    out = {}
    for name, mod in model.named_modules():
        wm = _mask_of(mod)
        if wm is not None:
            out[name] = wm.mask
    return out


def has_masks(model: nn.Module) -> bool:
    """Whether any module of ``model`` carries a :class:`WeightMask`.

    Example:
        >>> import torch
        >>> fc = torch.nn.Linear(2, 1)
        >>> before = has_masks(fc)
        >>> apply_mask(fc, torch.tensor([[True, False]]))
        >>> before, has_masks(fc)
        (False, True)
    """
    return any(_mask_of(m) is not None for m in model.modules())


def _own_class(module: nn.Module) -> None:
    """Give ``module`` a private copy of its parametrized class.

    ``copy.deepcopy`` of a parametrized module shares the class that carries the ``weight``
    property, and removing the parametrization deletes that property from the class, which
    would break every other copy; with a private class only this module changes.
    """
    cls = type(module)
    module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))


def make_permanent(model: nn.Module) -> nn.Module:
    """Bake every weight mask into its weight and remove the parametrizations (in place).

    The result is a plain module (``type(fc) is nn.Linear`` again, ``fc.weight`` an ordinary
    parameter holding the zeros); its ``state_dict`` has the original keys. Returns ``model``.

    Example:
        >>> import torch
        >>> fc = torch.nn.Linear(2, 1)
        >>> apply_mask(fc, torch.tensor([[True, False]]))
        >>> fc = make_permanent(fc)
        >>> type(fc).__name__, sorted(fc.state_dict()), fc.weight[0, 1].item()
        ('Linear', ['bias', 'weight'], 0.0)
    """
    for name, mod in list(model.named_modules()):
        if _mask_of(mod) is None:
            continue
        others = [p for p in _plist(mod) if not isinstance(p, WeightMask)]
        if others:
            raise ConfigError(
                f"module {name or type(model).__name__!r} has other weight parametrizations "
                f"({[type(p).__name__ for p in others]}); remove them first with "
                "torch.nn.utils.parametrize.remove_parametrizations"
            )
        _own_class(mod)
        parametrize.remove_parametrizations(mod, "weight", leave_parametrized=True)
    return model
