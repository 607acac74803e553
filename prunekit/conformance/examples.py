"""Example models for the handler battery, keyed by the module type a handler is registered for.

Every registered handler is checked on the examples of its type (``tests/test_conformance.py``
enumerates the registry), so a handler registered without an example fails that test with a
message naming :func:`register_handler_example`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .nets import CLASSES, Attention, Pooled, Recurrent, ReferenceNet, Tokens, build

__all__ = ["HandlerKey", "register_handler_example", "handler_examples"]

HandlerKey = type[nn.Module] | str
"""A registered module type, or the ``"package.module.Class"`` name of one."""

_EXAMPLES: dict[HandlerKey, list[Callable[[], ReferenceNet]]] = {}


def register_handler_example(key: HandlerKey, factory: Callable[[], ReferenceNet]) -> None:
    """Add an example model for the handler registered under ``key``.

    ``factory()`` returns a :class:`~prunekit.conformance.nets.ReferenceNet` whose model
    contains at least one module that handler handles, between layers whose units can be cut.

    Example:
        >>> import torch
        >>> from prunekit.conformance.nets import build
        >>> register_handler_example(torch.nn.Linear, lambda: build(
        ...     "mlp_wide", lambda: torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(),
        ...                                             torch.nn.Linear(16, 3)), (4,)))
        >>> "mlp_wide" in [f().name for f in handler_examples(torch.nn.Linear)]
        True
        >>> _ = _EXAMPLES[torch.nn.Linear].pop()
    """
    _EXAMPLES.setdefault(key, []).append(factory)


def handler_examples(key: HandlerKey) -> list[Callable[[], ReferenceNet]]:
    """The example factories registered for ``key`` (empty if none)."""
    return list(_EXAMPLES.get(key, []))


def _add(key: HandlerKey, name: str, make: Callable[[], nn.Module], shape: tuple[int, ...],
         tokens: int = 0) -> None:  # fmt: skip
    _EXAMPLES.setdefault(key, []).append(lambda: build(name, make, shape, tokens=tokens))


def _seq(*layers: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    return lambda: nn.Sequential(*(f() for f in layers))


def _pool(channels: int, *layers: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    return lambda: Pooled(_seq(*layers)(), channels)


def _register_builtin() -> None:
    conv, bn, norm = (
        nn.modules.conv._ConvNd,
        nn.modules.batchnorm._BatchNorm,
        nn.modules.batchnorm._NormBase,
    )
    relu = nn.ReLU
    img = (2, 6, 6)

    def fc(i: int, o: int) -> Callable[[], nn.Module]:
        return lambda: nn.Linear(i, o)

    def c2(i: int, o: int, k: int = 3, groups: int = 1) -> Callable[[], nn.Module]:
        return lambda: nn.Conv2d(i, o, k, groups=groups)

    _add(nn.Linear, "mlp", _seq(fc(4, 8), relu, fc(8, CLASSES)), (4,))
    _add(conv, "conv1d", _pool(4, lambda: nn.Conv1d(2, 6, 3), relu, lambda: nn.Conv1d(6, 4, 3)),
         (2, 9))  # fmt: skip
    _add(conv, "conv2d", _pool(4, c2(2, 6), relu, c2(6, 4)), img)
    _add(conv, "conv3d", _pool(4, lambda: nn.Conv3d(2, 6, 3), relu, lambda: nn.Conv3d(6, 4, 1)),
         (2, 5, 5, 5))  # fmt: skip
    _add(conv, "grouped", _pool(4, c2(4, 8, groups=2), relu, c2(8, 4, 1)), (4, 6, 6))
    _add(conv, "depthwise", _pool(3, c2(2, 6, 1), relu, c2(6, 6, groups=6), relu, c2(6, 3, 1)),
         img)  # fmt: skip
    _add(conv, "transposed", _pool(3, c2(2, 6), relu, lambda: nn.ConvTranspose2d(6, 4, 3), relu,
                                   c2(4, 3, 1)), img)  # fmt: skip
    _add(bn, "conv2d_bn", _pool(4, c2(2, 6), lambda: nn.BatchNorm2d(6), relu, c2(6, 4)), img)
    _add(bn, "bn1d", _seq(fc(4, 8), lambda: nn.BatchNorm1d(8), relu, fc(8, CLASSES)), (4,))
    _add(norm, "instancenorm", _pool(4, c2(2, 6), lambda: nn.InstanceNorm2d(6, affine=True),
                                     relu, c2(6, 4, 1)), img)  # fmt: skip
    _add(nn.LayerNorm, "layernorm", _seq(fc(4, 8), lambda: nn.LayerNorm(8), relu,
                                         fc(8, CLASSES)), (4,))  # fmt: skip
    _add(nn.RMSNorm, "rmsnorm", _seq(fc(4, 8), lambda: nn.RMSNorm(8), relu, fc(8, CLASSES)),
         (4,))  # fmt: skip
    _add(nn.GroupNorm, "groupnorm", _pool(4, c2(2, 8), lambda: nn.GroupNorm(4, 8), relu,
                                          c2(8, 4, 1)), img)  # fmt: skip
    _add(nn.GroupNorm, "groupnorm_per_channel", _pool(4, c2(2, 8), lambda: nn.GroupNorm(8, 8),
                                                      relu, c2(8, 4, 1)), img)  # fmt: skip
    _add(nn.PReLU, "prelu", _seq(fc(4, 8), lambda: nn.PReLU(8), fc(8, CLASSES)), (4,))
    _add(nn.PReLU, "prelu_shared", _seq(fc(4, 8), nn.PReLU, fc(8, CLASSES)), (4,))
    _add(nn.Embedding, "embedding", lambda: Tokens(nn.Embedding(10, 8), 8), (5,), tokens=10)
    _add(nn.EmbeddingBag, "embedding_bag", lambda: Tokens(nn.EmbeddingBag(10, 8), 8), (5,),
         tokens=10)  # fmt: skip
    _add(nn.MultiheadAttention, "attention", Attention, (5, 4))
    rnns: tuple[tuple[str, Callable[[], nn.RNNBase]], ...] = (
        ("lstm", lambda: nn.LSTM(4, 6, num_layers=2, batch_first=True)),
        ("gru_bidirectional", lambda: nn.GRU(4, 6, batch_first=True, bidirectional=True)),
        ("rnn", lambda: nn.RNN(4, 6, batch_first=True)),
        ("lstm_proj", lambda: nn.LSTM(4, 6, batch_first=True, proj_size=3)),
    )
    for name, rnn in rnns:
        _add(nn.RNNBase, name, _recurrent(rnn), (5, 4))
    _add("transformers.pytorch_utils.Conv1D", "hf_conv1d", _hf_conv1d, (4,))


def _recurrent(rnn: Callable[[], nn.RNNBase]) -> Callable[[], nn.Module]:
    return lambda: Recurrent(rnn())


def _hf_conv1d() -> nn.Module:
    from transformers.pytorch_utils import Conv1D  # optional dependency: skipped without it

    return nn.Sequential(Conv1D(8, 4), nn.ReLU(), Conv1D(CLASSES, 8))


_register_builtin()
