"""build_model / available_models / register_model: names, shapes, kwargs and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError, RegistryError
from prunekit.models import (
    CNN1D,
    MLP,
    VGG,
    DigitsCNN,
    LeNet5,
    ResNet20,
    ResNet56,
    available_models,
    build_model,
    register_model,
)

BUILT_IN = {
    "mlp": MLP,
    "lenet5": LeNet5,
    "resnet20": ResNet20,
    "resnet56": ResNet56,
    "vgg": VGG,
    "cnn1d": CNN1D,
    "digits_cnn": DigitsCNN,
}


def test_available_models_lists_the_built_ins() -> None:
    assert set(BUILT_IN) <= set(available_models())
    assert available_models() == sorted(available_models())


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("mlp", (1, 28, 28)),
        ("lenet5", (1, 8, 8)),
        ("resnet20", (3, 16, 16)),
        ("resnet56", (1, 8, 8)),
        ("vgg", (3, 28, 28)),
        ("cnn1d", (2, 40)),
        ("digits_cnn", (1, 8, 8)),
    ],
)
def test_builds_the_right_class_for_the_shape(name: str, shape: tuple[int, ...]) -> None:
    model = build_model(name.upper(), num_classes=4, input_shape=shape)
    assert type(model) is BUILT_IN[name]
    assert model.eval()(torch.zeros(2, *shape)).shape == (2, 4)


def test_input_shape_is_read_by_each_builder() -> None:
    mlp = build_model("mlp", num_classes=2, input_shape=(3, 4, 5), hidden=(8,))
    assert isinstance(mlp, MLP) and mlp.in_features == 60
    lenet = build_model("lenet5", num_classes=2, input_shape=(3, 8, 10))
    assert lenet.features[0].in_channels == 3 and lenet.features[3].padding == (2, 2)
    cnn = build_model("cnn1d", num_classes=2, input_shape=(1, 24), channels=(2, 2, 2))
    assert cnn.classifier[1].in_features == 2 * 6


def test_kwargs_are_forwarded() -> None:
    resnet = build_model("resnet20", num_classes=3, input_shape=(1, 8, 8), widths=(2, 4, 8))
    assert resnet.fc.in_features == 8
    vgg = build_model("vgg", num_classes=3, input_shape=(1, 8, 8), config=(4, "M", 6), hidden=5)
    assert vgg.classifier[-1].in_features == 5
    digits = build_model("digits_cnn", num_classes=3, input_shape=(1, 8, 8), width=4)
    assert digits.conv1.out_channels == 4


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(RegistryError, match=r"unknown model 'resnet18'; valid names: .*resnet20"):
        build_model("resnet18", num_classes=10, input_shape=(3, 32, 32))


def test_unknown_kwarg_lists_accepted_ones() -> None:
    with pytest.raises(ConfigError, match=r"accepted keyword arguments: hidden, dropout"):
        build_model("mlp", num_classes=2, input_shape=(4,), depth=3)
    with pytest.raises(ConfigError, match="accepted keyword arguments: none"):
        build_model("lenet5", num_classes=2, input_shape=(1, 28, 28), width=3)


@pytest.mark.parametrize(
    ("name", "shape", "message"),
    [
        ("resnet20", (40,), "must be \\(channels, height, width\\)"),
        ("lenet5", (1, 3, 3), "height and width >= 4"),
        ("cnn1d", (1, 28, 28), "must be \\(channels, length\\)"),
        ("digits_cnn", (3, 8, 8), "takes one input channel"),
        ("mlp", (), "non-empty tuple of positive sizes"),
        ("mlp", (0, 4), "non-empty tuple of positive sizes"),
    ],
)
def test_shape_mismatches_raise_config_error(
    name: str, shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(name, num_classes=2, input_shape=shape)


def test_bad_num_classes() -> None:
    with pytest.raises(ConfigError, match="num_classes must be an int >= 1"):
        build_model("mlp", num_classes=0, input_shape=(4,))


def test_register_model_rules() -> None:
    def tiny(*, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[-1], num_classes))

    register_model("test-tiny", tiny, override=True)
    assert build_model("test-tiny", num_classes=2, input_shape=(3,))(torch.zeros(1, 3)).shape == (
        1,
        2,
    )
    with pytest.raises(RegistryError, match="already registered"):
        register_model("TEST-TINY", tiny)
    with pytest.raises(RegistryError, match="non-empty string"):
        register_model("  ", tiny)
    with pytest.raises(ConfigError, match="must be callable"):
        register_model("test-bad", 3)  # type: ignore[arg-type]
