"""Importance criteria: group -> one score per unit."""

from .magnitude import Magnitude, RandomImportance, unit_slices
from .registry import Importance, available_importances, get_importance, register_importance

__all__ = [
    "Importance",
    "Magnitude",
    "RandomImportance",
    "available_importances",
    "get_importance",
    "register_importance",
    "unit_slices",
]
