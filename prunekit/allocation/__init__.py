"""Allocation: how many units to cut, and where."""

from .allocate import AllocationSpec, allocate, check_group_keys, global_order
from .budget import BudgetReport, check_target, resolve_target, search_budget
from .ratio import SCOPES, select_units
from .registry import (
    Allocator,
    allocator_for,
    available_allocators,
    get_allocator,
    register_allocator,
)
from .rules import clamp_removal, module_ratio, validate_ratio
from .sensitivity import SensitivityAllocation, allocate_by_sensitivity

__all__ = [
    "SCOPES",
    "AllocationSpec",
    "Allocator",
    "allocator_for",
    "available_allocators",
    "get_allocator",
    "register_allocator",
    "BudgetReport",
    "SensitivityAllocation",
    "allocate",
    "allocate_by_sensitivity",
    "check_group_keys",
    "check_target",
    "clamp_removal",
    "global_order",
    "module_ratio",
    "resolve_target",
    "search_budget",
    "select_units",
    "validate_ratio",
]
