"""Layer handlers: the only place that knows layer types.

A handler says which parameter dims are a module's *own* output units (used by ``ignore``),
how to make the module's attributes coherent after its tensors were sliced, and, for
modules traced as one node, how they couple their inputs, parameters and outputs.

It also answers what the rest of the library needs to know about a layer, so criteria,
recovery, sparsity and evaluation never test layer classes (``tests/test_layering.py``
enforces it):

====================  ================================================================
``output_dims``       parameter -> the dim of the units the module produces
``input_dim``         the dim of a weight that indexes the module's input features
                      (activation criteria, N:M sparsity)
``role``              what a tensor is: one of :data:`ROLES` (``"norm_scale"`` for the
                      BN-scale criterion and its L1 regulariser); every graph member
                      carries it as :attr:`~prunekit.graph.Member.role`
``running_stats``     the statistics a layer normalises with at inference
                      (BatchNorm re-estimation and inheritance)
``refit_geometry``    how a layer is affine in its unfolded input (least-squares
                      compensation)
``folds_at_inference``  whether deployment folds the layer into the one before it
``update``            make attributes coherent after a cut
``finalize``          the module to keep after surgery
====================  ================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from ..errors import RegistryError
from ..graph.dependency import set_role_source
from ..graph.registry import LeafRule, register_leaf_rule

if TYPE_CHECKING:
    from .refit import RefitGeometry
    from .running_stats import RunningStats

__all__ = [
    "ROLES",
    "Handler",
    "role_of",
    "register_handler",
    "register_handler_for_name",
    "get_handler",
    "registered_handlers",
    "handler_registrations",
]


ROLES = ("weight", "bias", "norm_scale", "statistic", "buffer")
"""The roles a tensor can have (:meth:`Handler.role`):

- ``"weight"``: a parameter that multiplies the module's input (the default for parameters);
- ``"bias"``: a parameter added to the output (default for names with the word ``bias``);
- ``"norm_scale"``: the per-channel scale ``gamma`` of a norm layer that normalises every
  channel on its own (batch and instance norms), so ``|gamma_u|`` alone sets unit u's output
  scale (Network Slimming). The scales of LayerNorm, GroupNorm and RMSNorm, whose statistics
  mix channels, stay ``"weight"``;
- ``"statistic"``: a running-statistic buffer (``running_mean``, ``running_var``);
- ``"buffer"``: any other buffer.
"""


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

    def input_dim(self, module: nn.Module, tensor: str, ndim: int) -> int | None:
        """The dim of ``module.<tensor>`` (``ndim`` dims) that indexes the module's input
        features, or ``None`` (a 1-D tensor, or unknown). The default is the other one of
        dims 0 and 1 when :meth:`output_dims` puts the outputs on dim 0 or 1."""
        if ndim < 2:
            return None
        out = self.output_dims(module).get(tensor, 0)
        return 1 if out == 0 else 0 if out == 1 else None

    def role(self, module: nn.Module, tensor: str) -> str:
        """What ``module.<tensor>`` is, one of :data:`ROLES`. The default: a buffer is
        ``"buffer"``, a parameter whose name has the word ``bias`` (``bias``,
        ``in_proj_bias``, ``bias_ih_l0``) is ``"bias"``, any other parameter ``"weight"``."""
        if tensor in module._buffers:
            return "buffer"
        return "bias" if "bias" in tensor.split("_") else "weight"

    def running_stats(self, module: nn.Module) -> RunningStats | None:
        """The running statistics ``module`` normalises with at inference, which a cut makes
        stale and BatchNorm re-estimation refreshes; ``None`` (the default) if it keeps none."""
        return None

    def refit_geometry(self, module: nn.Module) -> RefitGeometry | str | None:
        """How ``module`` is affine in its unfolded input, for least-squares compensation:
        a :class:`~prunekit.surgery.refit.RefitGeometry`; a string saying why this instance
        cannot be refit (a grouped convolution); ``None`` (the default) for a layer that is
        never refit."""
        return None

    def folds_at_inference(self, module: nn.Module) -> bool:
        """Whether a deployment folds ``module`` into the affine layer before it (batch norms,
        which ``torch.fx``'s ``fuse`` folds into a Conv/Linear in eval mode)."""
        return False

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


def handler_registrations() -> list[tuple[type[nn.Module] | str, Handler]]:
    """Every registration, in order: (module type, handler), then (``"package.module.Class"``,
    handler) for the handlers registered by name. The conformance battery
    (:mod:`prunekit.conformance`) checks each one.

    Example:
        >>> import torch
        >>> (torch.nn.Linear, get_handler(torch.nn.Linear(2, 2))) in handler_registrations()
        True
    """
    return [*_HANDLERS.items(), *_BY_NAME.items()]


def role_of(module: nn.Module, tensor: str) -> str:
    """The role (one of :data:`ROLES`) that ``module``'s handler gives ``module.<tensor>``.

    Example:
        >>> import torch
        >>> bn = torch.nn.BatchNorm2d(4)
        >>> role_of(bn, "weight"), role_of(bn, "bias"), role_of(bn, "running_mean")
        ('norm_scale', 'bias', 'statistic')
        >>> role_of(torch.nn.Linear(2, 3), "weight")
        'weight'
    """
    return get_handler(module).role(module, tensor)


_DEFAULT = Handler()
set_role_source(role_of)  # graph members get their roles from the handlers
