"""recalibrate_bn: running stats equal hand-computed data statistics; stale stats are fixed."""

from __future__ import annotations

import pytest
import torch
from recovery_support import digits_batches, trained_cnn
from torch import nn

import prunekit
from prunekit.errors import ConfigError, DataError
from prunekit.recovery import accuracy, batchnorm_layers, recalibrate_bn


def test_stats_equal_hand_computed_mean_and_size_weighted_variance() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(3, 2) * 2 + 1, torch.randn(5, 2) - 3
    net = nn.Sequential(nn.BatchNorm1d(2))
    assert recalibrate_bn(net, [a, b]) == 8
    bn = net[0]
    both = torch.cat([a, b])
    torch.testing.assert_close(bn.running_mean, both.mean(0))  # mean over all 8 samples
    var = (3 * a.var(0, unbiased=True) + 5 * b.var(0, unbiased=True)) / 8
    torch.testing.assert_close(bn.running_var, var)
    assert bn.momentum == 0.1 and net.training  # restored


def test_batchnorm2d_and_3d_statistics_are_per_channel() -> None:
    torch.manual_seed(1)
    x2, x3 = torch.randn(4, 3, 5, 5) + 2, torch.randn(2, 2, 3, 3, 3) * 3
    bn2, bn3 = nn.BatchNorm2d(3), nn.BatchNorm3d(2)
    recalibrate_bn(bn2, [x2])
    recalibrate_bn(bn3, [x3])
    torch.testing.assert_close(bn2.running_mean, x2.mean((0, 2, 3)))
    torch.testing.assert_close(bn2.running_var, x2.var((0, 2, 3), unbiased=True))
    torch.testing.assert_close(bn3.running_var, x3.var((0, 2, 3, 4), unbiased=True))


def test_sync_batchnorm_without_process_group_is_recalibrated() -> None:
    x = torch.randn(6, 3, 4, 4)
    net = nn.Sequential(nn.SyncBatchNorm(3))
    recalibrate_bn(net, [(x, None)])
    torch.testing.assert_close(net[0].running_mean, x.mean((0, 2, 3)))


def test_dropout_stays_in_eval_mode_and_weights_do_not_change() -> None:
    torch.manual_seed(2)
    x = torch.randn(16, 4)
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.9), nn.BatchNorm1d(4)).train()
    weights = [p.detach().clone() for p in net.parameters()]
    recalibrate_bn(net, [(x, torch.zeros(16))])
    with torch.no_grad():
        h = net[0](x)  # what BatchNorm sees without dropout
    torch.testing.assert_close(net[2].running_mean, h.mean(0))
    assert all(torch.equal(w, p) for w, p in zip(weights, net.parameters()))
    assert all(m.training for m in net.modules())


def test_limits_and_dict_batches_with_an_inputs_extractor() -> None:
    data = [{"pixels": torch.randn(10, 2), "label": torch.zeros(10)} for _ in range(5)]
    net = nn.BatchNorm1d(2)
    assert recalibrate_bn(net, data, samples=25, inputs=lambda b: b["pixels"]) == 30
    assert recalibrate_bn(net, data, batches=2, samples=None, inputs=lambda b: b["pixels"]) == 20
    assert int(net.num_batches_tracked) == 2


def test_no_batchnorm_is_a_noop_that_reads_no_data() -> None:
    def never() -> object:
        raise AssertionError("data must not be read")
        yield  # pragma: no cover

    assert recalibrate_bn(nn.Linear(2, 2), never()) == 0
    assert batchnorm_layers(nn.Sequential(nn.BatchNorm1d(2, track_running_stats=False))) == []


def test_empty_data_raises_and_keeps_old_stats() -> None:
    bn = nn.BatchNorm1d(2)
    bn.running_mean.fill_(5.0)
    with pytest.raises(DataError, match="no batch"):
        recalibrate_bn(bn, [])
    assert bn.running_mean.tolist() == [5.0, 5.0] and bn.momentum == 0.1
    with pytest.raises(ConfigError, match="samples=0"):
        recalibrate_bn(bn, [torch.randn(2, 2)], samples=0)


def test_failure_mid_way_restores_stats_and_modes() -> None:
    bn = nn.BatchNorm1d(2).eval()
    bn.running_var.fill_(7.0)
    with pytest.raises(RuntimeError):
        recalibrate_bn(bn, [torch.randn(4, 2), torch.randn(4, 3)])  # second batch: wrong width
    assert bn.running_var.tolist() == [7.0, 7.0] and not bn.training and bn.momentum == 0.1


def test_recalibration_recovers_accuracy_of_a_pruned_cnn_with_stale_stats() -> None:
    net = trained_cnn()
    val = digits_batches(512, split="val")
    base = accuracy(net, val)
    pruned = prunekit.prune(net, torch.zeros(1, 1, 8, 8), ratio=0.5).model
    stale = accuracy(pruned, val)
    used = recalibrate_bn(pruned, digits_batches(128), samples=512)
    fixed = accuracy(pruned, val)
    assert used == 512
    assert base > 0.9
    assert fixed > stale + 0.15, (base, stale, fixed)
