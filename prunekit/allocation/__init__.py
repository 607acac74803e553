"""Allocation: how many units to cut, and where."""

from .ratio import SCOPES, select_units

__all__ = ["SCOPES", "select_units"]
