"""Tracing and dependency groups (the structural engine's analysis half)."""

from .context import Info, TraceContext
from .dependency import DependencyGraph, FrozenGroup, Group, Member, build_graph
from .registry import register_leaf_rule, register_op_rule
from .tracer import call_model, flatten_tensors, trace

__all__ = [
    "DependencyGraph",
    "FrozenGroup",
    "Group",
    "Info",
    "Member",
    "TraceContext",
    "build_graph",
    "call_model",
    "flatten_tensors",
    "register_leaf_rule",
    "register_op_rule",
    "trace",
]
