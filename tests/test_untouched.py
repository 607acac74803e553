"""The input model stays untouched: forwards that write state, failing late stages with
``inplace=True``, scripted submodules, and the public entry points that run the model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import DataError
from prunekit.surgery.apply import light_copy
from tests.untouched import Snapshot, assert_untouched

X = torch.randn(2, 3, 8, 8)


class Stateful(nn.Module):
    """A forward that writes state in place: a buffer counter, an EMA buffer, a plain tensor
    attribute (a cache) and, under ``no_grad``, a parameter (a max-norm constraint)."""

    def __init__(self, write_param: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 4, 3)
        self.register_buffer("calls", torch.zeros(()))
        self.register_buffer("ema", torch.zeros(4))
        self.cache = torch.zeros(1)
        self.write_param = write_param

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.cache.add_(1)
        if self.write_param:
            with torch.no_grad():
                self.conv2.bias.clamp_(-0.05, 0.05)  # type: ignore[union-attr]
        y = self.conv2(self.bn(self.conv(x)).relu())
        self.ema.mul_(0.9).add_(y.detach().mean((0, 2, 3)), alpha=0.1)
        return y


def conv_bn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3))


def test_regression_forward_writing_buffers_never_reaches_the_input() -> None:
    model = Stateful()
    res = assert_untouched(model, prunekit.prune, model, X, ratio=0.5)
    assert model.calls.item() == 0 and model.cache.item() == 0
    assert res.model.conv.out_channels == 4
    assert res.model.calls.item() >= 1  # the copy ran, with its own counter


def test_regression_forward_writing_a_parameter_never_reaches_the_input() -> None:
    model = Stateful(write_param=True)
    with torch.no_grad():
        model.conv2.bias.fill_(0.3)
    res = assert_untouched(model, prunekit.prune, model, X, ratio=0.5)
    assert res.model.conv.out_channels == 4
    assert res.model.conv2.bias.data_ptr() != model.conv2.bias.data_ptr()


@pytest.mark.parametrize("verify", ["exact", "shapes"])
def test_regression_analyze_and_prune_leave_state_alone(verify: str) -> None:
    model = Stateful()
    assert_untouched(model, prunekit.analyze, model, X)
    assert_untouched(model, prunekit.analyze, model, X, trace_mode="train")
    assert_untouched(model, prunekit.prune, model, X, ratio=0.3, verify=verify)
    assert_untouched(model, prunekit.testing.check_equivalence, model, X)


def test_light_copy_owns_buffers_and_tensor_attributes() -> None:
    model = Stateful()
    model.alias = model.calls  # the same tensor twice stays one tensor in the copy
    copy = light_copy(model)
    assert copy.calls.data_ptr() != model.calls.data_ptr()
    assert copy.cache.data_ptr() != model.cache.data_ptr()
    assert copy.alias is copy.calls
    assert copy.conv.weight.data_ptr() == model.conv.weight.data_ptr()  # parameters: shared


def test_prune_with_grads_hooks_and_train_flags_leaves_them() -> None:
    model = conv_bn()
    model.train()
    model[3].eval()
    model(X).sum().backward()
    model[0].register_forward_hook(lambda m, i, o: None)
    model[1].register_forward_pre_hook(lambda m, i: None)
    model[3].register_full_backward_hook(lambda m, gi, go: None)
    model[0].weight.requires_grad_(False)
    data = [torch.randn(4, 3, 8, 8) for _ in range(2)]
    assert_untouched(model, prunekit.prune, model, X, ratio=0.5, bn_data=data)
    assert_untouched(model, prunekit.prune, model, X, ratio=0.5, trace_mode="train")


def test_regression_inplace_failure_in_recalibration_leaves_model_uncut() -> None:
    model = conv_bn()
    bad = [torch.randn(2, 5, 8, 8)]  # 5 channels, the model takes 3
    with pytest.raises(DataError, match=r"batch 0.*\(2, 5, 8, 8\).*\(2, 3, 8, 8\)") as info:
        assert_untouched(model, prunekit.prune, model, X, ratio=0.5, inplace=True, bn_data=bad)
    assert "bn_data" in str(info.value)
    assert model[0].out_channels == 8 and model[0].weight.shape[0] == 8


def test_regression_inplace_late_bad_batch_leaves_model_uncut() -> None:
    model = conv_bn()
    data = [torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8), torch.randn(2, 5, 8, 8)]
    with pytest.raises(DataError, match="batch 2"):
        assert_untouched(model, prunekit.prune, model, X, ratio=0.5, inplace=True, bn_data=data)
    assert model[0].out_channels == 8


def test_inplace_success_still_cuts_in_place() -> None:
    model = conv_bn()
    res = prunekit.prune(model, X, ratio=0.5, inplace=True, bn_data=[X])
    assert res.model is model and model[0].out_channels == 4 and model[1].num_features == 4


class WithScript(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.conv2 = nn.Conv2d(8, 4, 3)
        self.head = torch.jit.script(nn.Linear(4, 2))  # scripted, not used in forward
        self.unused = torch.jit.script(nn.Sequential(nn.Linear(2, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv(x).relu())


def test_regression_light_copy_copies_script_modules() -> None:
    model = WithScript()
    copy = light_copy(model)
    assert isinstance(copy.head, torch.jit.ScriptModule)
    assert copy.head is not model.head
    y = torch.randn(1, 4)
    assert torch.equal(copy.head(y), model.head(y))
    res = assert_untouched(model, prunekit.prune, model, X, ratio=0.5)
    assert res.model.conv.out_channels == 4
    assert torch.equal(res.model.head(y), model.head(y))


def test_snapshot_sees_every_kind_of_change() -> None:
    model = conv_bn()
    checks = [
        lambda m: m[1].running_mean.add_(1),
        lambda m: m[0].weight.requires_grad_(False),
        lambda m: m.train(False),
        lambda m: m[0].register_forward_hook(lambda *a: None),
        lambda m: setattr(m[0], "_prunekit_plan", 1),
        lambda m: m(X).sum().backward(),
        lambda m: m[1].__setattr__("momentum", 0.5),
    ]
    for change in checks:
        m = conv_bn()
        snap = Snapshot.take(m)
        change(m)
        assert snap.diff(m), change
    Snapshot.take(model).assert_unchanged(model)
