"""The model registry: ``build_model("resnet20", num_classes=10, input_shape=(1, 28, 28))``.

Each builder reads what it needs from ``input_shape`` (the per-sample shape, as in
:attr:`prunekit.data.DatasetSplits.input_shape`): ``mlp`` its input width, conv nets their
channel count, ``lenet5`` its image size, ``cnn1d`` its signal length. Extra keyword
arguments go to the model's constructor.

======== ================= =========================================================
name     input_shape       model
======== ================= =========================================================
mlp      any               :class:`~prunekit.models.mlp.MLP` (input flattened)
lenet5   (C, H, W), H,W>=4 :class:`~prunekit.models.lenet.LeNet5`
resnet20 (C, H, W)         :class:`~prunekit.models.resnet.ResNet20`
resnet56 (C, H, W)         :class:`~prunekit.models.resnet.ResNet56`
vgg      (C, H, W)         :class:`~prunekit.models.vgg.VGG`
cnn1d    (C, L), L>=4      :class:`~prunekit.models.cnn1d.CNN1D`
digits_cnn (1, H, W)       :class:`~prunekit.models.digits_cnn.DigitsCNN`
smollm2-135m (T,) tokens   pretrained SmolLM2-135M (:func:`~prunekit.models.llm.load_llm`)
======== ================= =========================================================

``smollm2-135m`` is a pretrained language model, not a fresh architecture: its outputs are
logits over its fixed 49 152-token vocabulary and it reads token sequences of any length, so
``num_classes`` and ``input_shape`` are not used; ``dtype`` is its one keyword argument.
Use :func:`~prunekit.models.llm.load_llm` to get its tokenizer as well.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry
from .cnn1d import CNN1D
from .digits_cnn import DigitsCNN
from .lenet import LeNet5
from .llm import SMOLLM2_135M, load_llm
from .mlp import MLP
from .resnet import ResNet20, ResNet56
from .vgg import VGG, VGG11_SMALL

__all__ = ["ModelBuilder", "available_models", "build_model", "register_model"]

ModelBuilder = Callable[..., nn.Module]
"""``builder(*, num_classes, input_shape, **kwargs) -> nn.Module``."""

_REGISTRY: Registry[ModelBuilder] = Registry(
    "model",
    "a callable (*, num_classes, input_shape, **kwargs) -> nn.Module",
    lambda n: n.strip().lower(),
)


def register_model(name: str, builder: ModelBuilder, *, override: bool = False) -> None:
    """Register a model builder under ``name`` (lower-cased).

    Args:
        name: Registry name.
        builder: Callable ``(*, num_classes, input_shape, **kwargs) -> nn.Module``.
        override: Replace an existing registration instead of raising.

    Raises:
        RegistryError: If ``name`` is empty, or taken and ``override`` is false.
        ConfigError: If ``builder`` is not callable.

    Example:
        >>> from torch import nn
        >>> def linear(*, num_classes, input_shape):
        ...     return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))
        >>> register_model("linear-example", linear, override=True)
        >>> build_model("linear-example", num_classes=3, input_shape=(4,))[1].out_features
        3
    """
    _REGISTRY.register(name, builder, override=override)


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`, sorted.

    Example:
        >>> {"mlp", "lenet5", "resnet20", "resnet56", "vgg", "cnn1d"} <= set(available_models())
        True
    """
    return _REGISTRY.names()


def build_model(
    name: str, *, num_classes: int, input_shape: tuple[int, ...], **kwargs: Any
) -> nn.Module:
    """Build a registered model for inputs of ``input_shape`` and ``num_classes`` outputs.

    Args:
        name: A name from :func:`available_models` (case-insensitive).
        num_classes: Number of output logits.
        input_shape: Shape of one input sample, without the batch dimension.
        **kwargs: Passed to the model constructor (e.g. ``hidden=(64,)`` for ``mlp``).

    Returns:
        A freshly initialised model (seed torch yourself for reproducible weights).

    Raises:
        RegistryError: If ``name`` is unknown (the message lists the valid names).
        ConfigError: If ``input_shape`` does not suit the model, ``num_classes < 1``, or a
            keyword argument is not accepted (the message lists the accepted ones).

    Example:
        >>> import torch
        >>> model = build_model("lenet5", num_classes=10, input_shape=(1, 28, 28))
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    builder = _REGISTRY.get(name)
    key = name.strip().lower()
    shape = tuple(int(d) for d in input_shape)
    if not shape or min(shape) < 1:
        raise ConfigError(
            f"build_model({key!r}): input_shape must be a non-empty tuple of positive sizes "
            f"(one sample, no batch dimension), got {input_shape!r}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(
            f"build_model({key!r}): num_classes must be an int >= 1, got {num_classes!r}"
        )
    try:
        inspect.signature(builder).bind(num_classes=num_classes, input_shape=shape, **kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"build_model({key!r}): {exc}; accepted keyword arguments: {_accepted(builder)}"
        ) from exc
    return builder(num_classes=num_classes, input_shape=shape, **kwargs)


def _accepted(builder: ModelBuilder) -> str:
    names = [
        p.name
        for p in inspect.signature(builder).parameters.values()
        if p.name not in ("num_classes", "input_shape")
        and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return ", ".join(names) if names else "none"


def _image_shape(name: str, shape: tuple[int, ...], min_size: int = 1) -> tuple[int, int, int]:
    if len(shape) != 3 or min(shape[1:]) < min_size:
        raise ConfigError(
            f"build_model({name!r}): input_shape must be (channels, height, width) with height "
            f"and width >= {min_size}, got {shape}; use 'mlp' for flat features or 'cnn1d' "
            "for (channels, length) signals"
        )
    return shape[0], shape[1], shape[2]


def _mlp(
    *,
    num_classes: int,
    input_shape: tuple[int, ...],
    hidden: Sequence[int] = (256, 128),
    dropout: float = 0.0,
) -> nn.Module:
    return MLP(math.prod(input_shape), hidden, num_classes, dropout)


def _lenet5(*, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    channels, height, width = _image_shape("lenet5", input_shape, min_size=4)
    return LeNet5(num_classes, channels, input_size=min(height, width))


def _resnet(depth: int) -> ModelBuilder:
    cls = ResNet20 if depth == 20 else ResNet56

    def build(
        *, num_classes: int, input_shape: tuple[int, ...], widths: Sequence[int] = (16, 32, 64)
    ) -> nn.Module:
        channels, _, _ = _image_shape(f"resnet{depth}", input_shape)
        return cls(num_classes, channels, widths=widths)

    return build


def _vgg(
    *,
    num_classes: int,
    input_shape: tuple[int, ...],
    config: Sequence[int | str] = VGG11_SMALL,
    hidden: int = 256,
    dropout: float = 0.0,
) -> nn.Module:
    channels, _, _ = _image_shape("vgg", input_shape)
    return VGG(num_classes, channels, config=config, hidden=hidden, dropout=dropout)


def _cnn1d(
    *,
    num_classes: int,
    input_shape: tuple[int, ...],
    channels: Sequence[int] = (32, 64, 64),
    hidden: int = 128,
) -> nn.Module:
    if len(input_shape) != 2 or input_shape[1] < 4:
        raise ConfigError(
            f"build_model('cnn1d'): input_shape must be (channels, length) with length >= 4, "
            f"got {input_shape}"
        )
    return CNN1D(
        num_classes, input_shape[0], input_length=input_shape[1], channels=channels, hidden=hidden
    )


def _digits_cnn(*, num_classes: int, input_shape: tuple[int, ...], width: int = 32) -> nn.Module:
    channels, _, _ = _image_shape("digits_cnn", input_shape, min_size=2)
    if channels != 1:
        raise ConfigError(
            f"build_model('digits_cnn'): DigitsCNN takes one input channel, got input_shape "
            f"{input_shape}; use 'resnet20', 'vgg' or 'lenet5' for {channels} channels"
        )
    return DigitsCNN(width=width, num_classes=num_classes)


register_model("mlp", _mlp)
register_model("lenet5", _lenet5)
register_model("resnet20", _resnet(20))
register_model("resnet56", _resnet(56))
register_model("vgg", _vgg)
register_model("cnn1d", _cnn1d)


def _llm(name: str) -> ModelBuilder:
    def build(
        *, num_classes: int, input_shape: tuple[int, ...], dtype: torch.dtype = torch.float32
    ) -> nn.Module:
        del num_classes, input_shape  # a pretrained LM: fixed vocabulary, any length
        return load_llm(name, dtype=dtype)[0]

    return build


register_model("digits_cnn", _digits_cnn)
register_model(SMOLLM2_135M, _llm(SMOLLM2_135M))
