"""Allocation: how many units to cut, and where."""

from .allocate import AllocationSpec, allocate, check_group_keys, global_order
from .budget import BudgetReport, resolve_target, search_budget
from .ratio import SCOPES, select_units
from .rules import clamp_removal, module_ratio, validate_ratio
from .sensitivity import SensitivityAllocation, allocate_by_sensitivity

__all__ = [
    "SCOPES",
    "AllocationSpec",
    "BudgetReport",
    "SensitivityAllocation",
    "allocate",
    "allocate_by_sensitivity",
    "check_group_keys",
    "clamp_removal",
    "global_order",
    "module_ratio",
    "resolve_target",
    "search_budget",
    "select_units",
    "validate_ratio",
]
