"""Layer handlers: the only place that knows layer types.

A handler says which parameter dims are a module's *own* output units (used by ``ignore``),
how to make the module's attributes coherent after its tensors were sliced, and, for
modules traced as one node, how they couple their inputs, parameters and outputs.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import RegistryError
from ..graph.registry import LeafRule, register_leaf_rule

__all__ = [
    "Handler",
    "register_handler",
    "register_handler_for_name",
    "get_handler",
    "registered_handlers",
]


class Handler:
    """Base handler: subclass it and register it for a module type.

    Example:
        >>> import torch
        >>> from prunekit.surgery import Handler, register_handler
        >>> class Scale(torch.nn.Module):
        ...     def __init__(self, n):
        ...         super().__init__()
        ...         self.n = n
        ...         self.s = torch.nn.Parameter(torch.ones(n))
        ...     def forward(self, x):
        ...         return x * self.s
        >>> class ScaleHandler(Handler):
        ...     def update(self, module):
        ...         module.n = module.s.shape[0]
        >>> register_handler(Scale, ScaleHandler(), override=True)
    """

    leaf_rule: LeafRule | None = None

    def output_dims(self, module: nn.Module) -> dict[str, int]:
        """Parameter name -> the dim that holds the units this module produces."""
        return {name: 0 for name, p in module.named_parameters(recurse=False) if p.dim() > 0}

    def update(self, module: nn.Module) -> None:
        """Make attributes (``in_features``, ``num_heads`` ...) match the sliced tensors."""

    def finalize(self, module: nn.Module) -> nn.Module:
        """Return the module to keep after surgery (a handler may swap in a prunable class)."""
        return module


_HANDLERS: dict[type[nn.Module], Handler] = {}
_BY_NAME: dict[str, Handler] = {}  # "package.module.Class" for classes we must not import


def register_handler_for_name(qualified_name: str, handler: Handler) -> None:
    """Register ``handler`` for a class named ``"package.module.Class"`` without importing it.

    Used for third-party layers (``transformers.pytorch_utils.Conv1D``); the leaf rule of
    such a handler is registered when the class is first met.
    """
    _BY_NAME[qualified_name] = handler


def register_handler(
    module_type: type[nn.Module], handler: Handler, *, override: bool = False
) -> None:
    """Register ``handler`` for ``module_type`` (and its subclasses)."""
    if module_type in _HANDLERS and not override:
        raise RegistryError(
            f"a handler for {module_type.__name__} is already registered; pass override=True "
            "to replace it"
        )
    _HANDLERS[module_type] = handler
    if handler.leaf_rule is not None:
        register_leaf_rule(module_type, handler.leaf_rule, override=True)


def get_handler(module: nn.Module) -> Handler:
    """The handler for ``module`` (most derived registered class wins; default otherwise)."""
    for cls in type(module).__mro__:
        h = _HANDLERS.get(cls)
        if h is not None:
            return h
        named = _BY_NAME.get(f"{cls.__module__}.{cls.__qualname__}")
        if named is not None:
            return named
    return _DEFAULT


def registered_handlers() -> dict[str, Any]:
    """Names of the module types with a registered handler."""
    return {cls.__name__: h for cls, h in _HANDLERS.items()}


_DEFAULT = Handler()
