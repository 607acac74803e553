"""Reference models: forward shapes, hand-counted sizes, and pruning by prunekit's engine."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ConfigError
from prunekit.evaluation import count_params
from prunekit.models import CNN1D, MLP, VGG, LeNet5, ResNet, ResNet20, ResNet56, build_model

# registry name -> per-sample input shape of the dataset it is meant for
DATA_SHAPES = {
    "mlp": (30,),  # breast_cancer
    "lenet5": (1, 28, 28),  # mnist / animal_mnist
    "resnet20": (1, 28, 28),
    "resnet56": (1, 28, 28),
    "vgg": (1, 28, 28),
    "cnn1d": (1, 40),  # mnist1d
    "digits_cnn": (1, 8, 8),  # digits
}


def _build(name: str, shape: tuple[int, ...], num_classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, num_classes=num_classes, input_shape=shape).eval()


@pytest.mark.parametrize("name", sorted(DATA_SHAPES))
def test_forward_shape_on_its_data(name: str) -> None:
    shape = DATA_SHAPES[name]
    model = _build(name, shape, num_classes=7)
    out = model(torch.randn(3, *shape))
    assert out.shape == (3, 7) and torch.isfinite(out).all()


def test_mlp_parameter_count_by_hand() -> None:
    # 30*16+16 + 16*8+8 + 8*2+2 = 496 + 136 + 18
    assert count_params(MLP(30, hidden=(16, 8), num_classes=2)) == 650
    assert count_params(MLP(4, hidden=(), num_classes=3)) == 15  # logistic regression
    dropout = MLP(4, hidden=(8,), num_classes=2, dropout=0.5)
    assert any(isinstance(m, nn.Dropout) for m in dropout.modules())


def test_lenet5_is_the_classic_size_and_adapts_to_small_images() -> None:
    # conv1 6*25+6, conv2 16*6*25+16, fc 400*120+120, 120*84+84, 84*10+10
    assert count_params(LeNet5()) == 156 + 2416 + 48120 + 10164 + 850
    for size in (4, 8, 11, 12, 28, 32):
        assert LeNet5(input_size=size)(torch.zeros(1, 1, size, size)).shape == (1, 10)
    assert LeNet5(in_channels=3)(torch.zeros(1, 3, 28, 28)).shape == (1, 10)
    with pytest.raises(ConfigError, match="input_size >= 4"):
        LeNet5(input_size=3)


def test_resnet_sizes_by_hand() -> None:
    # He et al.'s ResNet-20 (option A, 3 input channels) has 269,722 parameters; option B adds
    # two projection shortcuts: conv 16*32 + BN 2*32, conv 32*64 + BN 2*64 = 2,752.
    assert count_params(ResNet20(num_classes=10, in_channels=3)) == 269_722 + 2_752
    # one input channel: the stem conv has 16*9 weights instead of 16*27
    assert count_params(ResNet20(num_classes=10, in_channels=1)) == 269_722 + 2_752 - 288
    deep = ResNet56(in_channels=1)
    assert [len(s) for s in (deep.layer1, deep.layer2, deep.layer3)] == [9, 9, 9]
    assert deep(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    with pytest.raises(ConfigError, match="6n \\+ 2"):
        ResNet(21)


def test_resnet_shortcuts_are_projections_only_where_shapes_change() -> None:
    model = ResNet20(in_channels=1)
    projections = [n for n, m in model.named_modules() if n.endswith("shortcut.0")]
    assert projections == ["layer2.0.shortcut.0", "layer3.0.shortcut.0"]
    assert isinstance(model.layer1[0].shortcut, nn.Identity)


def test_vgg_default_has_eight_convs_and_custom_configs_work() -> None:
    convs = [m for m in VGG().modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 128, 256, 256, 256, 256]
    assert all(isinstance(m, nn.Conv2d) is False or m.bias is None for m in VGG().modules())
    small = VGG(num_classes=3, in_channels=3, config=(4, "M", 8), hidden=16, dropout=0.1)
    assert small(torch.zeros(2, 3, 8, 8)).shape == (2, 3)
    with pytest.raises(ConfigError, match="config must hold"):
        VGG(config=("M",))


def test_cnn1d_flatten_size_follows_the_length() -> None:
    model = CNN1D(num_classes=4, input_length=41, channels=(2, 3, 5), hidden=6)
    assert model.classifier[1].in_features == 5 * 10  # 41 // 2 // 2 = 10 positions
    assert model(torch.zeros(2, 1, 41)).shape == (2, 4)


@pytest.mark.parametrize("name", sorted(DATA_SHAPES))
def test_prunable_by_prunekit(name: str) -> None:
    shape = DATA_SHAPES[name]
    model = _build(name, shape)
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    result = prunekit.prune(model, example, ratio=0.5)
    pruned = result.model.eval()
    assert count_params(pruned) < 0.6 * count_params(model)
    batch = torch.randn(5, *shape)
    assert pruned(batch).shape == (5, 10)
    assert count_params(model) == count_params(_build(name, shape))  # original untouched


@pytest.mark.parametrize("name", ["mlp", "lenet5", "resnet20", "vgg", "cnn1d"])
def test_engine_equivalence_on_reference_models(name: str) -> None:
    shape = DATA_SHAPES[name]
    model = _build(name, shape)
    report = prunekit.testing.check_equivalence(model, torch.randn(2, *shape))
    assert report.groups_tested > 0 and report.max_abs_error < 1e-4
