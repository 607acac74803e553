"""The architecture zoo registry: every entry is a zero-argument factory that seeds
the global RNG with 0 and returns a fresh ``ZooCase`` (model in eval mode)."""

from __future__ import annotations

from collections.abc import Callable

from .common import ZooCase, call_model, randomize_norms
from .models_cnn import CNN_ZOO
from .models_misc import MISC_ZOO
from .models_mobile import MOBILE_ZOO
from .models_seq import SEQ_ZOO

_ORDER = [
    "mlp",
    "vgg_bn",
    "resnet_basic",
    "resnet_bottleneck",
    "densenet",
    "mobilenetv2",
    "resnext",
    "squeeze_excitation",
    "shufflenet",
    "conv1d",
    "conv3d",
    "unet",
    "chunk_split",
    "lstm",
    "gru",
    "transformer_mha",
    "transformer_handwritten",
    "tied_embedding",
    "vit",
    "multitask_dict",
    "mlp_dict_input",
]

_ALL: dict[str, Callable[[], ZooCase]] = {**CNN_ZOO, **MOBILE_ZOO, **MISC_ZOO, **SEQ_ZOO}
assert sorted(_ALL) == sorted(_ORDER), "zoo registry out of sync"

ZOO: dict[str, Callable[[], ZooCase]] = {name: _ALL[name] for name in _ORDER}

__all__ = ["ZOO", "ZooCase", "call_model", "randomize_norms"]
