"""Registries of op rules (ATen level) and leaf-module rules.

An op rule maps the labels of an op's inputs to the labels of its outputs and couples the
atoms the op ties together. A leaf-module rule does the same for a whole module whose
internals are opaque or need layer knowledge (RNNs, ``nn.MultiheadAttention``); those are
registered by ``prunekit.surgery`` handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import RegistryError
from .context import TraceContext

__all__ = ["OpRule", "LeafRule", "register_op_rule", "register_leaf_rule", "op_rule", "leaf_rule"]

OpRule = Callable[[TraceContext, str, dict[str, Any], Any], None]
LeafRule = Callable[[TraceContext, nn.Module, tuple[Any, ...], dict[str, Any], Any], None]

_OP_RULES: dict[str, OpRule] = {}
_LEAF_RULES: dict[type[nn.Module], LeafRule] = {}


def register_op_rule(*names: str, override: bool = False) -> Callable[[OpRule], OpRule]:
    """Register a rule for ATen ops by overload-packet name (e.g. ``"convolution"``).

    Args:
        names: ATen op names the rule handles.
        override: replace an existing rule instead of raising.

    Example:
        >>> from prunekit.graph import register_op_rule
        >>> @register_op_rule("my_custom_identity", override=True)
        ... def _rule(ctx, op, args, out):
        ...     ctx.set(out, ctx.get(args["self"]))
    """

    def deco(fn: OpRule) -> OpRule:
        for name in names:
            if name in _OP_RULES and not override:
                raise RegistryError(
                    f"an op rule for '{name}' is already registered; pass override=True "
                    "to replace it"
                )
            _OP_RULES[name] = fn
        return fn

    return deco


def register_leaf_rule(
    module_type: type[nn.Module], rule: LeafRule, *, override: bool = False
) -> None:
    """Trace ``module_type`` as one opaque node coupled by ``rule``."""
    if module_type in _LEAF_RULES and not override:
        raise RegistryError(
            f"a leaf rule for {module_type.__name__} is already registered; pass "
            "override=True to replace it"
        )
    _LEAF_RULES[module_type] = rule


def op_rule(name: str) -> OpRule | None:
    """The rule registered for op ``name``, or ``None``."""
    return _OP_RULES.get(name)


def leaf_rule(module: nn.Module) -> LeafRule | None:
    """The leaf rule for ``module``'s class (most derived registered base wins)."""
    for cls in type(module).__mro__:
        rule = _LEAF_RULES.get(cls)
        if rule is not None:
            return rule
    return None
