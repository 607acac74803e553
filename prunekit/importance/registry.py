"""The importance-criterion registry: ``importance="l2"`` or an object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import RegistryError
from ..graph.dependency import Group
from .base import Criterion, Importance

__all__ = [
    "Importance",
    "FunctionCriterion",
    "register_importance",
    "get_importance",
    "available_importances",
]

_REGISTRY: dict[str, Callable[[], Importance]] = {}


def register_importance(
    name: str, factory: Callable[[], Importance], *, override: bool = False
) -> None:
    """Register a criterion factory under ``name`` (case-insensitive, like the look-up).

    Example:
        >>> register_importance("Width", lambda: FunctionCriterion(lambda g, t: torch.ones(g.num_units)))
        >>> "width" in available_importances()
        True
        >>> _ = _REGISTRY.pop("width")
    """
    if not isinstance(name, str) or not name.strip():
        raise RegistryError(f"an importance name must be a non-empty string, got {name!r}")
    key = name.lower()
    if key in _REGISTRY and not override:
        raise RegistryError(
            f"importance '{key}' is already registered; pass override=True to replace it"
        )
    _REGISTRY[key] = factory


def available_importances() -> list[str]:
    """Names accepted by ``importance=``."""
    return sorted(_REGISTRY)


@dataclass
class FunctionCriterion(Criterion):
    """A plain ``fn(group, tensors) -> scores`` as a criterion (with the no-op ``prepare``).

    :func:`get_importance` wraps callables that have no ``prepare`` method in it, so every
    resolved criterion follows the :class:`Importance` protocol.
    """

    fn: Callable[[Group, dict[str, torch.Tensor]], torch.Tensor]

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.fn(group, tensors)


def _as_criterion(obj: object, what: str) -> Importance:
    if isinstance(obj, Importance):
        return obj
    if callable(obj):
        return FunctionCriterion(obj)
    raise RegistryError(
        f"{what} must be a name ({', '.join(available_importances())}) or a callable "
        f"criterion, got {type(obj).__name__}"
    )


def get_importance(spec: str | Importance | Callable[..., torch.Tensor]) -> Importance:
    """Resolve a criterion name, or pass a criterion object through; a bare callable without
    ``prepare`` comes back wrapped in :class:`FunctionCriterion`.

    Example:
        >>> type(get_importance("l1")).__name__
        'Magnitude'
        >>> crit = get_importance(lambda group, tensors: torch.ones(group.num_units))
        >>> type(crit).__name__, crit.prepare(torch.nn.Linear(2, 2), None)
        ('FunctionCriterion', None)
    """
    if isinstance(spec, str):
        factory = _REGISTRY.get(spec.lower())
        if factory is None:
            raise RegistryError(
                f"unknown importance {spec!r}; valid names: {', '.join(available_importances())}"
            )
        return _as_criterion(factory(), f"the factory registered as importance {spec!r}")
    return _as_criterion(spec, "importance")
