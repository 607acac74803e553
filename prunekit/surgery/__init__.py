"""Layer handlers and the physical cut (the structural engine's surgery half)."""

from . import attention, layers, rnn  # noqa: F401  (register the built-in handlers)
from .apply import cut, tensor_owners
from .attention import PrunedMultiheadAttention
from .refit import RefitGeometry
from .registry import (
    ROLES,
    Handler,
    get_handler,
    handler_registrations,
    register_handler,
    register_handler_for_name,
    registered_handlers,
    role_of,
)
from .running_stats import RunningStats

__all__ = [
    "ROLES",
    "Handler",
    "PrunedMultiheadAttention",
    "RefitGeometry",
    "RunningStats",
    "cut",
    "get_handler",
    "handler_registrations",
    "register_handler",
    "register_handler_for_name",
    "registered_handlers",
    "role_of",
    "tensor_owners",
]
