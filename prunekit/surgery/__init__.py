"""Layer handlers and the physical cut (the structural engine's surgery half)."""

from . import attention, layers, rnn  # noqa: F401  (register the built-in handlers)
from .apply import cut, tensor_owners
from .attention import PrunedMultiheadAttention
from .registry import (
    Handler,
    get_handler,
    register_handler,
    register_handler_for_name,
    registered_handlers,
)

__all__ = [
    "Handler",
    "PrunedMultiheadAttention",
    "cut",
    "get_handler",
    "register_handler",
    "register_handler_for_name",
    "registered_handlers",
    "tensor_owners",
]
