"""prunekit.prune(): the public entry point, its argument checks, atomicity and results."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import prunekit
import prunekit.pruner
from prunekit import ConfigError, NothingToPruneError, PrunekitError, TraceError


class ResConvNet(nn.Module):
    """conv-BN -> conv-BN + residual -> global pool -> fc -> out."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        h = torch.relu(self.bn2(self.conv2(h)) + h)
        h = h.mean((2, 3))
        return self.out(torch.relu(self.fc(h)))


class HardCodedWidth(nn.Module):
    """Its forward hard-codes the hidden width, so any cut of fc1 breaks it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 32)
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x))
        h = h.reshape(h.shape[0], 32)
        return self.fc2(h)


def make_net() -> ResConvNet:
    torch.manual_seed(0)
    net = ResConvNet()
    with torch.no_grad():
        for bn in (net.bn1, net.bn2):
            bn.running_mean.normal_(0, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
    return net.eval()


X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(model: nn.Module, snap: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert list(state) == list(snap)
    for k, v in snap.items():
        assert state[k].shape == v.shape, k
        assert torch.equal(state[k], v), k


@pytest.fixture(scope="module")
def pruned() -> prunekit.PruneResult:
    return prunekit.prune(make_net(), X, ratio=0.5)


# --------------------------------------------------------------------------- results


def test_prune_shrinks_every_group_by_half(pruned: prunekit.PruneResult) -> None:
    m = pruned.model
    assert isinstance(m, ResConvNet)
    assert (m.conv1.out_channels, m.bn1.num_features, m.conv2.in_channels) == (8, 8, 8)
    assert (m.conv2.out_channels, m.bn2.num_features, m.fc.in_features) == (8, 8, 8)
    assert (m.fc.out_features, m.out.in_features, m.out.out_features) == (16, 16, 10)
    assert m.conv1.weight.shape == (8, 3, 3, 3)
    assert m.bn1.running_mean.shape == (8,)
    assert pruned.plan.num_removed == 8 + 16
    assert m(X).shape == (2, 10)


def test_summary_reports_decrease(pruned: prunekit.PruneResult) -> None:
    s = pruned.summary()
    assert s.after.params < s.before.params
    assert s.after.macs < s.before.macs
    assert s.before.params == sum(p.numel() for p in make_net().parameters())
    assert s.after.params == sum(p.numel() for p in pruned.model.parameters())
    assert sorted(s.widths) == [("conv1.weight:0", 16, 8), ("fc.weight:0", 32, 16)]
    text = str(s)
    assert "params" in text and "MACs" in text
    assert "conv1.weight:0" in text
    d = s.to_dict()
    assert d["before"]["params"] == s.before.params
    assert d["widths"] == [list(w) for w in s.widths]


def test_pruned_model_trains(pruned: prunekit.PruneResult) -> None:
    model = copy.deepcopy(pruned.model).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.fc.weight.detach().clone()
    x = torch.randn(5, 3, 8, 8)
    y = torch.randint(0, 10, (5,))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    opt.step()
    assert not torch.equal(before, model.fc.weight)
    assert torch.isfinite(nn.functional.cross_entropy(model(x), y))


@pytest.mark.parametrize("batch", [1, 5])
def test_pruned_model_runs_at_other_batch_sizes(pruned: prunekit.PruneResult, batch: int) -> None:
    with torch.no_grad():
        out = pruned.model.eval()(torch.randn(batch, 3, 8, 8))
    assert out.shape == (batch, 10)
    assert torch.isfinite(out).all()


def test_pruned_model_jit_traces(pruned: prunekit.PruneResult) -> None:
    model = pruned.model.eval()
    traced = torch.jit.trace(model, X)
    x = torch.randn(3, 3, 8, 8)
    torch.testing.assert_close(traced(x), model(x))


def test_ratio_zero_removes_nothing() -> None:
    net = make_net()
    res = prunekit.prune(net, X, ratio=0)
    assert res.plan.removed == {}
    assert res.plan.num_removed == 0
    assert res.after.params == res.before.params
    assert res.after.macs == res.before.macs
    assert_same_state(res.model, snapshot(net))
    torch.testing.assert_close(res.model(X), net(X), rtol=0, atol=0)


def test_scope_global() -> None:
    res = prunekit.prune(make_net(), X, ratio=0.5, scope="global")
    total = 16 + 32
    assert res.plan.meta["scope"] == "global"
    assert 0 < res.plan.num_removed <= total // 2
    assert res.model.conv1.out_channels >= 1 and res.model.fc.out_features >= 1
    assert res.model(X).shape == (2, 10)
    assert res.after.params < res.before.params


def test_importance_l1_and_random_work_and_differ() -> None:
    l1 = prunekit.prune(make_net(), X, ratio=0.5, importance="l1")
    rnd = prunekit.prune(make_net(), X, ratio=0.5, importance="random")
    for res in (l1, rnd):
        assert res.model.conv1.out_channels == 8
        assert res.model.fc.out_features == 16
        assert res.model(X).shape == (2, 10)
    assert l1.plan.meta["importance"] == "l1"
    assert rnd.plan.meta["importance"] == "random"
    assert l1.plan.removed != rnd.plan.removed


def test_importance_object_is_accepted() -> None:
    from prunekit.importance import Magnitude

    res = prunekit.prune(make_net(), X, ratio=0.25, importance=Magnitude(p=1, reduction="max"))
    assert res.plan.meta["importance"] == "Magnitude"
    assert res.model.conv1.out_channels == 12


def test_round_to() -> None:
    res = prunekit.prune(make_net(), X, ratio=0.6, round_to=8)
    # conv group: keep 16 - 9 = 7 -> 8; fc group: keep 32 - 19 = 13 -> 16
    assert res.model.conv1.out_channels == 8
    assert res.model.fc.out_features == 16


# --------------------------------------------------------------------------- inplace / atomicity


def test_not_inplace_leaves_input_model_unchanged() -> None:
    net = make_net()
    snap = snapshot(net)
    convs = (net.conv1, net.fc)
    res = prunekit.prune(net, X, ratio=0.5)
    assert res.model is not net
    assert_same_state(net, snap)
    assert (net.conv1, net.fc) == convs
    assert net.conv1.out_channels == 16 and net.fc.out_features == 32
    assert not net.training


def test_inplace_modifies_the_model_object() -> None:
    net = make_net()
    res = prunekit.prune(net, X, ratio=0.5, inplace=True)
    assert res.model is net
    assert net.conv1.out_channels == 8
    assert net.conv1.weight.shape == (8, 3, 3, 3)
    assert net.fc.out_features == 16
    assert net.state_dict()["bn1.running_var"].shape == (8,)
    assert net(X).shape == (2, 10)
    assert {n for n, _ in net.named_parameters()} == {n for n, _ in make_net().named_parameters()}


def test_inplace_failure_leaves_model_exactly_as_it_was() -> None:
    torch.manual_seed(0)
    net = HardCodedWidth()
    snap = snapshot(net)
    fc1 = net.fc1
    ref = net(torch.ones(2, 4))
    # analyze()'s probe finds that cutting fc1 breaks the literal reshape and freezes it,
    # so nothing is left to prune; either way the model must be untouched.
    with pytest.raises(PrunekitError):
        prunekit.prune(net, torch.randn(2, 4), ratio=0.5, inplace=True)
    assert_same_state(net, snap)
    assert net.fc1 is fc1
    assert net.fc1.out_features == 32 and net.fc2.in_features == 32
    torch.testing.assert_close(net(torch.ones(2, 4)), ref, rtol=0, atol=0)


def test_inplace_failure_in_check_is_atomic(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise PrunekitError("injected failure")

    monkeypatch.setattr(prunekit.pruner, "check_runs", boom)
    monkeypatch.setattr(prunekit.pruner, "verified_cut", boom)
    net = make_net()
    snap = snapshot(net)
    children = dict(net.named_children())
    with pytest.raises(PrunekitError, match="injected failure"):
        prunekit.prune(net, X, ratio=0.5, inplace=True)
    assert_same_state(net, snap)
    assert dict(net.named_children()) == children
    assert net.conv1.out_channels == 16


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5, "0.5", None, float("nan")])
def test_bad_ratio(ratio: object) -> None:
    with pytest.raises(ConfigError, match="ratio") as info:
        prunekit.prune(make_net(), X, ratio=ratio)  # type: ignore[arg-type]
    assert repr(ratio) in str(info.value)
    assert "[0, 1)" in str(info.value)


def test_bad_scope() -> None:
    with pytest.raises(ConfigError, match="regional") as info:
        prunekit.prune(make_net(), X, ratio=0.5, scope="regional")
    assert "local" in str(info.value) and "global" in str(info.value)


@pytest.mark.parametrize("round_to", [0, -8, 2.5])
def test_bad_round_to(round_to: object) -> None:
    with pytest.raises(ConfigError, match="round_to"):
        prunekit.prune(make_net(), X, ratio=0.5, round_to=round_to)  # type: ignore[arg-type]


def test_unknown_importance_name() -> None:
    with pytest.raises(prunekit.errors.RegistryError, match="l2"):
        prunekit.prune(make_net(), X, ratio=0.5, importance="nope")


def test_ignore_unknown_name() -> None:
    with pytest.raises(ConfigError, match="'conv9'"):
        prunekit.prune(make_net(), X, ratio=0.5, ignore=("conv9",))


def test_ignore_unknown_name_suggests_close_names() -> None:
    with pytest.raises(ConfigError, match="did you mean") as info:
        prunekit.prune(make_net(), X, ratio=0.5, ignore=("block.fc",))
    assert "'fc'" in str(info.value)


def test_ignore_module_not_in_model() -> None:
    stranger = nn.Linear(16, 32)
    with pytest.raises(ConfigError, match="Linear") as info:
        prunekit.prune(make_net(), X, ratio=0.5, ignore=(stranger,))
    assert "not a submodule" in str(info.value)


def test_ignore_wrong_type() -> None:
    with pytest.raises(ConfigError, match="int"):
        prunekit.prune(make_net(), X, ratio=0.5, ignore=(3,))


def test_analyze_with_wrong_inputs_raises_trace_error() -> None:
    net = make_net()
    with pytest.raises(TraceError, match="example inputs"):
        prunekit.analyze(net, torch.randn(2, 5, 8, 8))


def test_prune_with_wrong_inputs_raises_trace_error() -> None:
    with pytest.raises(TraceError, match="example inputs"):
        prunekit.prune(make_net(), torch.randn(2, 5, 8, 8), ratio=0.5)


def test_nothing_to_prune() -> None:
    with pytest.raises(NothingToPruneError, match="Linear") as info:
        prunekit.prune(nn.Linear(4, 8), torch.randn(2, 4), ratio=0.5)
    assert "analyze" in str(info.value)


def test_everything_ignored_is_nothing_to_prune() -> None:
    net = make_net()
    with pytest.raises(NothingToPruneError):
        prunekit.prune(net, X, ratio=0.5, ignore=(net.conv1, "fc"))


def test_ignoring_the_root_module_ignores_everything() -> None:
    net = make_net()
    with pytest.raises(NothingToPruneError):
        prunekit.prune(net, X, ratio=0.5, ignore=(net,))


# --------------------------------------------------------------------------- ignore


def test_ignore_keeps_out_features_but_prunes_in_features() -> None:
    net = make_net()
    res = prunekit.prune(net, X, ratio=0.5, ignore=(net.fc,))
    assert res.model.fc.out_features == 32
    assert res.model.out.in_features == 32
    assert res.model.fc.in_features == 8  # the conv group upstream is still cut
    assert res.model.conv1.out_channels == 8
    assert list(res.plan.removed) == ["conv1.weight:0"]
    assert res.model(X).shape == (2, 10)


def test_ignore_by_name_equals_ignore_by_module() -> None:
    net = make_net()
    a = prunekit.prune(net, X, ratio=0.5, ignore=("fc",))
    b = prunekit.prune(net, X, ratio=0.5, ignore=[net.fc])
    assert a.plan.removed == b.plan.removed


def test_ignore_bn_keeps_its_channels() -> None:
    net = make_net()
    res = prunekit.prune(net, X, ratio=0.5, ignore=("bn1",))
    assert res.model.bn1.num_features == 16
    assert res.model.conv1.out_channels == 16
    assert res.model.fc.out_features == 16


# --------------------------------------------------------------------------- training flags


def test_prune_preserves_per_module_training_flags() -> None:
    net = make_net().train()
    net.bn1.eval()
    res = prunekit.prune(net, X, ratio=0.5)
    assert [m.training for m in res.model.modules()] == [m.training for m in net.modules()]


# --------------------------------------------------------------------------- verify modes


def test_verify_modes_give_the_same_cut_on_a_sound_model() -> None:
    net = make_net()
    exact = prunekit.prune(net, X, ratio=0.5, verify="exact")
    shapes = prunekit.prune(net, X, ratio=0.5, verify="shapes")
    assert exact.plan.removed == shapes.plan.removed
    torch.testing.assert_close(exact.model(X), shapes.model(X))


def test_unknown_verify_mode_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="'shapes'.*'exact'"):
        prunekit.prune(make_net(), X, ratio=0.5, verify="full")


def test_light_copy_shares_storage_but_cut_and_zero_never_write_into_it() -> None:
    from prunekit.surgery.apply import light_copy, zero_slices

    net = make_net()
    snap = snapshot(net)
    twin = light_copy(net)
    first = next(twin.parameters())
    assert first.data_ptr() == next(net.parameters()).data_ptr()
    name = next(n for n, _ in twin.named_parameters())
    assert zero_slices(twin, {(name, 0): np.array([0, 1])}) > 0
    assert_same_state(net, snap)


def test_pruned_model_owns_its_tensors_training_it_never_touches_the_original() -> None:
    """prune() works on a storage-sharing copy; what it hands back must own every tensor,
    including the ignored (uncut) classifier and the BN buffers."""
    net = make_net()
    snap = snapshot(net)
    res = prunekit.prune(net, X, ratio=0.5, ignore=["out"])
    theirs = {t.untyped_storage().data_ptr() for t in (*net.parameters(), *net.buffers())}
    mine = {t.untyped_storage().data_ptr() for t in (*res.model.parameters(), *res.model.buffers())}
    assert not theirs & mine
    res.model.train()
    res.model(X).sum().backward()
    torch.optim.SGD(res.model.parameters(), lr=1.0).step()
    with torch.no_grad():
        res.model.out.weight.add_(1.0)
    assert_same_state(net, snap)


def test_hooks_and_bound_methods_on_the_pruned_model_stay_there() -> None:
    net = make_net()
    net.conv1.register_forward_hook(lambda *a: None)
    net.act = net.fc.forward  # a bound method kept as an attribute
    res = prunekit.prune(net, X, ratio=0.5)
    res.model.conv1.register_forward_pre_hook(lambda *a: None)
    assert len(net.conv1._forward_pre_hooks) == 0
    assert len(res.model.conv1._forward_hooks) == 1
    assert res.model.act.__self__ is res.model.fc


# --------------------------------------------------------------------------- BN recalibration


def test_bn_data_recalibrates_batchnorm_after_the_cut() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8)
    ).eval()
    data = [torch.randn(16, 3, 10, 10) + 2.0 for _ in range(2)]
    stale = prunekit.prune(net, data[0][:1], ratio=0.5).model
    pruner = prunekit.Pruner(net, data[0][:1], ratio=0.5, bn_data=data)
    fresh = pruner.step().model
    assert pruner.recalibrated_ == 32
    # the second BN holds the statistics of what it sees while the first one normalises with
    # batch statistics (BN layers run in train mode during recalibration, as in update_bn)
    head = copy.deepcopy(fresh[:4]).train()
    with torch.no_grad():
        feats = torch.cat([head(x) for x in data])
    torch.testing.assert_close(fresh[4].running_mean, feats.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(stale[4].running_mean, fresh[4].running_mean)
    assert not torch.equal(
        net[4].running_mean, fresh[4].running_mean[:1].expand(8)
    )  # original kept


def test_calibration_data_is_the_deprecated_name_of_bn_data() -> None:
    """ "Calibration" means a criterion's calibration data; BatchNorm re-estimation data is
    ``bn_data``. The old keyword still works, with a DeprecationWarning; both is an error."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3))
    x = torch.randn(2, 3, 8, 8)
    batches = [torch.randn(4, 3, 8, 8) for _ in range(2)]
    new = prunekit.prune(net, x, ratio=0.5, bn_data=batches).model
    with pytest.warns(
        DeprecationWarning, match=r"prune\(calibration_data=...\) is now prune\(bn_data"
    ):
        old = prunekit.prune(net, x, ratio=0.5, calibration_data=batches).model
    for a, b in zip(new.state_dict().values(), old.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(prunekit.ConfigError, match="bn_data"):
        prunekit.prune(net, x, ratio=0.5, bn_data=batches, calibration_data=batches)
