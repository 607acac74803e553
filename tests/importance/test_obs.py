"""OBS group scores against a hand computation, and the consumer views it reads.

Network ``x (2) -> fc1 = Linear(2, 2, bias=False), W1 = I -> ReLU -> fc2 = Linear(2, 1)``,
``W2 = [[1, 2]]``. Calibration rows (all >= 0, so the hidden activations equal them)::

    h0 = [1, 1, 0]   h1 = [1, 2, 1]   y = h0 + 2 h1 = [3, 5, 2]

Without a bias column the Gram is ``A = [[2, 3], [3, 6]]`` over 3 rows, ``H = A / 3``,
``H^-1 = [[6, -3], [-3, 2]]``: score(u) = w_u^2 / H^-1_uu = [1/6, 4/2 = 2]. By least
squares: dropping h1, y ~ 4 h0 leaves [-1, 1, 2] (SSE 6, 2 per row); dropping h0,
y ~ 2.5 h1 leaves [0.5, 0, -0.5] (SSE 0.5, 1/6 per row). With fc2's bias refit too,
dropping h1 leaves y ~ 2 h0 + 2 = [-1, 1, 0] (2/3 per row) and dropping h0 still 1/6.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ConfigError
from prunekit.importance import OBS, consumers
from prunekit.lstsq import NormalEquations, obs_cost, obs_remove

X = torch.tensor([[1.0, 1.0], [1.0, 2.0], [0.0, 1.0]])


def tiny(bias: bool) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=bias))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[2].weight.copy_(torch.tensor([[1.0, 2.0]]))
        if bias:
            net[2].bias.fill_(0.5)
    return net


def scores(crit: OBS, net: nn.Module, example: torch.Tensor) -> list[float]:
    graph = prunekit.analyze(net, example)
    crit.prepare(net, graph)
    return crit(graph.groups[0], graph.tensors).tolist()


@pytest.mark.parametrize(("bias", "want"), [(False, [1 / 6, 2.0]), (True, [1 / 6, 2 / 3])])
def test_obs_matches_the_hand_computation(bias: bool, want: list[float]) -> None:
    got = scores(OBS(data=[X], chunks=1, damp=0.0), tiny(bias), X[:1])
    assert got == pytest.approx(want, rel=1e-5)


def test_obs_update_is_the_least_squares_refit() -> None:
    net = tiny(False)
    crit = OBS(data=[X], chunks=1, damp=0.0)
    graph = prunekit.analyze(net, X[:1])
    crit.prepare(net, graph)
    w = crit.update(graph.groups[0], [1])["2"]
    assert w[0].tolist() == pytest.approx([4.0, 0.0])  # y ~ 4 h0, hand computation above
    y = X @ net[2].weight.detach().T
    assert float(((X @ w.float().T - y) ** 2).mean()) == pytest.approx(2.0)


def test_obs_on_a_conv_consumer_equals_brute_force_least_squares() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 3, bias=False))
    x = torch.randn(4, 2, 7, 7)
    got = scores(OBS(data=[x], chunks=1, damp=0.0), net, x[:1])
    rows = nn.functional.unfold(torch.relu(net[0](x)).detach(), 3).transpose(1, 2).reshape(-1, 27)
    y = rows @ net[2].weight.detach().reshape(2, -1).T
    for u in range(3):
        keep = [c for c in range(27) if not u * 9 <= c < (u + 1) * 9]
        eq = NormalEquations(bias=False)
        eq.add(rows[:, keep], y)
        w = eq.solve(0.0)
        sse = float(((rows[:, keep].double() @ w.T - y.double()) ** 2).sum())
        assert got[u] == pytest.approx(sse / rows.shape[0], rel=1e-4)


def test_consumer_columns_of_a_conv_are_its_kernel_elements() -> None:
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    g = prunekit.analyze(net, torch.zeros(1, 1, 8, 8)).groups[0]
    (c,) = consumers.consumers_of(g, dict(net.named_modules()))
    assert c.cols.tolist()[2] == list(range(18, 27)) and c.bias and c.weight.shape == (2, 37)


def test_lstsq_obs_algebra() -> None:
    # obs_remove drops the columns and refits: w = [1, 2] on H = I -> [1, 0], cost ||w_U||^2
    w, h = torch.tensor([[1.0, 2.0]]).double(), torch.eye(2).double()
    assert obs_cost(w, h, [1]) == 4.0
    w2, h2 = obs_remove(w, h, [1])
    assert w2.tolist() == [[1.0, 0.0]] and h2.tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_obs_scores_every_kind_of_group() -> None:
    """Linear, conv + BN, residual and attention nets of the conformance battery, an LSTM:
    finite scores of the right length for every group, warnings only for heads whose
    consumer weights a functional op reads (nn.MultiheadAttention's out_proj)."""
    from prunekit.conformance.nets import criterion_nets

    nets = [(n.model, n.example_inputs, [b[0] for b in n.batches]) for n in criterion_nets()]
    nets.append((_LSTMNet(), torch.randn(2, 5, 3), [torch.randn(4, 5, 3)]))
    for model, example, calib in nets:
        graph = prunekit.analyze(model, example)
        crit = OBS(data=calib)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            crit.prepare(model, graph)
            for g in graph.groups:
                s = crit(g, graph.tensors)
                assert s.shape == (g.num_units,) and bool(torch.isfinite(s).all())


class _LSTMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(3, 6, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def test_obs_needs_data_and_a_valid_damp() -> None:
    with pytest.raises(ConfigError, match="calibration data"):
        net = tiny(False)
        OBS().prepare(net, prunekit.analyze(net, X[:1]))
    with pytest.raises(ConfigError, match="damp"):
        OBS(data=[X], damp=-1.0)
    with pytest.raises(ConfigError, match="chunks"):
        OBS(data=[X], chunks=0)
