"""The importance-criterion registry: ``importance="l2"`` or an object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch

from ..errors import RegistryError
from ..graph.dependency import Group

__all__ = ["Importance", "register_importance", "get_importance", "available_importances"]


@runtime_checkable
class Importance(Protocol):
    """A criterion: group -> one score per unit (higher = more important)."""

    def __call__(self, group: Group, tensors: dict[str, torch.Tensor]) -> torch.Tensor: ...


_REGISTRY: dict[str, Callable[[], Importance]] = {}


def register_importance(
    name: str, factory: Callable[[], Importance], *, override: bool = False
) -> None:
    """Register a criterion factory under ``name``."""
    if name in _REGISTRY and not override:
        raise RegistryError(
            f"importance '{name}' is already registered; pass override=True to replace it"
        )
    _REGISTRY[name] = factory


def available_importances() -> list[str]:
    """Names accepted by ``importance=``."""
    return sorted(_REGISTRY)


def get_importance(spec: str | Importance) -> Importance:
    """Resolve a criterion name or pass a criterion object through."""
    if isinstance(spec, str):
        factory = _REGISTRY.get(spec.lower())
        if factory is None:
            raise RegistryError(
                f"unknown importance {spec!r}; valid names: {', '.join(available_importances())}"
            )
        return factory()
    if callable(spec):
        return spec
    raise RegistryError(
        f"importance must be a name ({', '.join(available_importances())}) or a callable "
        f"criterion, got {type(spec).__name__}"
    )
