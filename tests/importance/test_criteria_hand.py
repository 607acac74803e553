"""Every criterion against a hand computation on a tiny network (literal numbers).

Network ``fc1 = Linear(2, 2)`` -> ReLU -> ``fc2 = Linear(2, 1)``, loss = output sum::

    W1 = [[1, 1], [1, -1]]   b1 = [0, 0]   W2 = [[2, 3]]   b2 = [0]
    batch A: x = [1, 2]  z = [3, -1]  h = [3, 0]  y = 6
             dW2 = [3, 0]   dz = [2, 0]   dW1 = [[2, 4], [0, 0]]   db1 = [2, 0]
    batch B: x = [2, 1]  z = [3, 1]   h = [3, 1]  y = 9
             dW2 = [3, 1]   dz = [2, 3]   dW1 = [[4, 2], [6, 3]]   db1 = [2, 3]

The hidden group has members fc1.weight:0, fc1.bias:0 and fc2.weight:1.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ConfigError, RegistryError
from prunekit.importance import (
    FPGM,
    LAMP,
    ActivationMean,
    APoZ,
    BNScale,
    Calibration,
    Fisher,
    Fuse,
    LossContribution,
    MeanGradient,
    Taylor,
    Wanda,
    available_importances,
    get_importance,
    spearman,
)

BATCHES = [(torch.tensor([[1.0, 2.0]]), None), (torch.tensor([[2.0, 1.0]]), None)]


def sum_loss(out: torch.Tensor, batch: object) -> torch.Tensor:
    return out.sum()


def tiny() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[2.0, 3.0]]))
        net[2].bias.zero_()
    return net


def score(crit: object, net: nn.Module | None = None) -> list[float]:
    net = net or tiny()
    graph = prunekit.analyze(net, torch.zeros(1, 2))
    prepare = getattr(crit, "prepare", None)
    if prepare is not None:
        prepare(net, graph)
    assert callable(crit)
    return [round(v, 5) for v in crit(graph.groups[0], graph.tensors).tolist()]


def test_mean_gradient() -> None:
    # E|g|: fc1.w rows [[3, 3], [3, 1.5]], b1 [2, 1.5], fc2.w [3, .5]; member means, then mean
    crit = MeanGradient(data=BATCHES, loss_fn=sum_loss)
    assert score(crit) == [round(8 / 3, 5), round(4.25 / 3, 5)]


def test_taylor_abs() -> None:
    # w * mean(g): fc1 [[3, 3], [3, -1.5]], bias 0, fc2 [6, 1.5]  ->  |12|, |3|
    assert score(Taylor(data=BATCHES, loss_fn=sum_loss)) == [12.0, 3.0]


def test_taylor_elementwise_drops_signs_before_summing() -> None:
    # |w * mean(g)| per element: unit A [3, 3] + 6 = 12; unit B [3, |-1.5|] + 1.5 = 6
    # (the "abs" variant lets B's +3 and -1.5 cancel: 3)
    assert score(Taylor(data=BATCHES, loss_fn=sum_loss, variant="elementwise")) == [12.0, 6.0]


def test_taylor_sq() -> None:
    # (w g)^2 summed per unit: A -> [56, 0], B -> [56, 54]; mean over batches
    assert score(Taylor(data=BATCHES, loss_fn=sum_loss, variant="sq")) == [56.0, 27.0]


def test_fisher_obd() -> None:
    # 1/2 sum E[g^2] w^2 (biases are 0)
    assert score(Fisher(data=BATCHES, loss_fn=sum_loss)) == [28.0, 13.5]


def test_activation_mean_and_apoz() -> None:
    # fc2 reads h: A [3, 0], B [3, 1]
    assert score(ActivationMean(data=BATCHES)) == [3.0, 0.5]
    assert score(APoZ(data=BATCHES)) == [1.0, 0.5]  # 1 - fraction of zeros


def test_wanda() -> None:
    # fc1 rows: (|1| + |1|) * sqrt(5) each; fc2 columns: 2 * sqrt(18), 3 * 1
    want = [2 * math.sqrt(5) + 6 * math.sqrt(2), 2 * math.sqrt(5) + 3.0]
    assert score(Wanda(data=BATCHES)) == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("vectorize", [True, False])
def test_loss_contribution(vectorize: bool) -> None:
    # zero unit 0: y = 3 h1 -> A 0, B 3 (vs 6, 9): -6; zero unit 1: A 6, B 6: (0 - 3) / 2
    crit = LossContribution(data=BATCHES, loss_fn=sum_loss, vectorize=vectorize, chunks=1)
    assert score(crit) == [-6.0, -1.5]
    assert crit.forwards_ == 4 and crit.batches_ == 2 and crit.base_sum_ == 15.0


def test_normalisation_per_group() -> None:
    assert score(Taylor(data=BATCHES, loss_fn=sum_loss, normalize="max")) == [1.0, 0.25]
    assert score(Taylor(data=BATCHES, loss_fn=sum_loss, normalize="sum")) == [0.8, 0.2]
    assert score(Taylor(data=BATCHES, loss_fn=sum_loss, normalize="standardise")) == [1.0, -1.0]
    with pytest.raises(ConfigError, match="standardise"):
        Taylor(data=BATCHES, loss_fn=sum_loss, normalize="zscore")


def three_unit() -> nn.Sequential:
    """fc1 rows a=(0, 0), b=(3, 4), c=(1, 0); b1 = [1, 2, 3]; fc2 = [[1, 1, 2]]."""
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]]))
        net[0].bias.copy_(torch.tensor([1.0, 2.0, 3.0]))
        net[2].weight.copy_(torch.tensor([[1.0, 1.0, 2.0]]))
    return net


def test_fpgm() -> None:
    # only fc1.weight has slices wider than 1: d(a,b) = 5, d(a,c) = 1, d(b,c) = sqrt(20)
    r20 = math.sqrt(20)
    assert score(FPGM(), three_unit()) == pytest.approx([6.0, 5 + r20, 1 + r20], abs=1e-4)


def test_lamp() -> None:
    # fc1 ||row||^2 = [0, 25, 1] -> [0, 25/25, 1/26]; b1^2 = [1, 4, 9] -> [1/14, 4/13, 1];
    # fc2^2 = [1, 1, 4] (tie broken by index) -> [1/6, 1/5, 1]
    want = [(0 + 1 / 14 + 1 / 6) / 3, (1 + 4 / 13 + 1 / 5) / 3, (1 / 26 + 1 + 1) / 3]
    assert score(LAMP(), three_unit()) == pytest.approx(want, abs=1e-5)


class TwoBN(nn.Module):
    """A residual stream with two batch norms in one group: |gamma| is averaged."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)
        self.c2, self.b2 = nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2)
        self.head = nn.Conv2d(2, 1, 1)
        with torch.no_grad():
            self.b1.weight.copy_(torch.tensor([1.0, -4.0]))
            self.b2.weight.copy_(torch.tensor([3.0, 0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.b1(self.c1(x))
        return self.head(h + self.b2(self.c2(h)))


def test_bn_scale_averages_norms_and_falls_back() -> None:
    net = TwoBN().eval()
    graph = prunekit.analyze(net, torch.zeros(1, 1, 2, 2))
    crit = BNScale()
    crit.prepare(net, graph)
    stream = graph.group("c1.weight:0")
    assert crit(stream, graph.tensors).tolist() == [2.0, 2.25]
    # no norm in the tiny MLP: L2 magnitude (mean of member norms) by default
    mlp = score(BNScale())
    assert mlp == [round((math.sqrt(2) + 0 + 2) / 3, 5), round((math.sqrt(2) + 0 + 3) / 3, 5)]
    with pytest.warns(UserWarning, match="batch-norm scale"):
        assert score(BNScale(fallback="uniform")) == [1.0, 1.0]


def test_fuse_weighted_and_rank() -> None:
    graph = prunekit.analyze(three_unit(), torch.zeros(1, 2))
    group = graph.groups[0]

    def a(g: object, t: object) -> torch.Tensor:
        return torch.tensor([1.0, 2.0, 3.0])

    def b(g: object, t: object) -> torch.Tensor:
        return torch.tensor([30.0, 20.0, 10.0])

    weighted = Fuse([a, b], weights=[0.7, 0.3])(group, graph.tensors)
    assert weighted.tolist() == pytest.approx([0.8, 1.0, 1.2])
    ranked = Fuse([a, b], weights=[7, 3], method="rank")(group, graph.tensors)
    assert ranked.tolist() == pytest.approx([0.3, 0.5, 0.7])
    with pytest.raises(ConfigError, match="weights"):
        Fuse([a, b], weights=[1.0])
    with pytest.raises(RegistryError, match="taylor"):
        Fuse(["taylr"])


def test_fuse_prepares_data_criteria_with_one_shared_pass() -> None:
    cal = Calibration(BATCHES, sum_loss)
    fused = Fuse([Taylor(calibration=cal), Fisher(calibration=cal), "l2"], method="rank")
    assert score(fused)  # prepared both, computed
    assert cal.needs == {"wg", "grad_sq"}


def test_calibration_halves_merge_to_one_pass() -> None:
    net = tiny()
    graph = prunekit.analyze(net, torch.zeros(1, 2))
    stats = ("grad", "grad_abs", "grad_sq", "wg", "wg_sq", "act_abs", "act_sq", "act_zero")
    whole = Calibration(BATCHES, sum_loss, stats=stats).collect(net, graph)
    halves = [Calibration([b], sum_loss, stats=stats).collect(net, graph) for b in BATCHES]
    merged = type(whole).reduce(halves)
    assert merged.counts == whole.counts and merged.loss_sum == whole.loss_sum == 15.0
    assert sorted(merged.sums) == sorted(whole.sums)
    for key, value in whole.sums.items():
        assert torch.equal(merged.sums[key], value), key
    scores = []
    for st in (whole, merged):
        crit = Taylor(stats=st)
        crit.prepare(net, graph)
        scores.append(crit(graph.groups[0], graph.tensors).tolist())
    assert scores[0] == scores[1] == [12.0, 3.0]
    assert whole.mean("grad", "0.bias").tolist() == [2.0, 1.5]


def test_data_criterion_errors_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="loss_fn"):
        Taylor(data=BATCHES)
    with pytest.raises(ConfigError, match="data=loader"):
        score(get_importance("taylor"))
    with pytest.raises(ConfigError, match="not prepared"):
        graph = prunekit.analyze(tiny(), torch.zeros(1, 2))
        Taylor(data=BATCHES, loss_fn=sum_loss)(graph.groups[0], graph.tensors)
    with pytest.raises(ConfigError, match="scalar"):
        score(Taylor(data=BATCHES, loss_fn=lambda o, b: torch.cat([o, o])))
    with pytest.raises(ConfigError, match="variant"):
        Taylor(data=BATCHES, loss_fn=sum_loss, variant="cube")


def test_registry_lists_every_criterion() -> None:
    names = set(available_importances())
    want = {"grad", "taylor", "taylor_sq", "fisher", "obd", "activation", "apoz", "wanda"}
    assert want | {"loss", "fpgm", "lamp", "bn_scale", "l1", "l2", "random"} <= names
    with pytest.raises(RegistryError, match="wanda"):
        get_importance("wandaa")


def test_prune_prepares_on_the_analysed_copy() -> None:
    net = tiny()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = prunekit.prune(
        net, torch.zeros(1, 2), ratio=0.5, importance=Taylor(data=BATCHES, loss_fn=sum_loss)
    )
    assert res.plan.removed == {"0.weight:0": [1]}  # Taylor [12, 3]: unit 1 goes
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    assert all(p.grad is None for p in res.model.parameters())


def test_spearman() -> None:
    assert spearman(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])) == pytest.approx(
        -1.0
    )
    with pytest.raises(ConfigError):
        spearman(torch.ones(2), torch.ones(3))
