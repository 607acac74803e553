"""Loss contribution re-scored in chunks within one call, against a hand computation.

Network ``x = 1 -> fc1 = Linear(1, 3, bias=False), W1 = [1, 1, 0.5] -> ReLU -> fc2 =
Linear(3, 1, bias=False), W2 = [1, 1, 1]``: ``h = [1, 1, 0.5]``, ``y = 2.5``, with the
hinge loss ``relu(1.5 - y)`` (0 at y = 2.5: the margin hides every single unit)::

    one-shot (chunks=1): zeroing any one unit leaves y >= 1.5: dL = [0, 0, 0]
    chunks=3 (one unit a round):
      round 1: all 0; unit 0 goes first (stable order), score 0
      round 2 (unit 0 zeroed, y = 1.5, L = 0): zero 1 -> y = 0.5, dL = 1;
               zero 2 -> y = 1, dL = 0.5 -> unit 2 goes, score max(0, 0.5) = 0.5
      round 3 (y = 1, L = 0.5): zero 1 -> y = 0, L = 1.5, dL = 1 -> score 1
    scores [0, 1, 0.5]; unit-forwards 3 + 2 + 1 = 6, two re-scorings
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import prunekit
from prunekit.errors import ConfigError
from prunekit.importance import LossContribution, Rescored, Taylor

DATA = [torch.ones(1, 1)]
# the hinge is 0 on DATA by construction: the health check rightly warns (loss near zero)
pytestmark = pytest.mark.filterwarnings("ignore::prunekit.errors.CalibrationWarning")


def hinge(out: torch.Tensor, batch: object) -> torch.Tensor:
    return torch.relu(1.5 - out).sum()


def tiny() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(1, 3, bias=False), nn.ReLU(), nn.Linear(3, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [1.0], [0.5]]))
        net[2].weight.fill_(1.0)
    return net


def scores(crit: object, net: nn.Module) -> list[float]:
    graph = prunekit.analyze(net, DATA[0])
    crit.prepare(net, graph)  # type: ignore[attr-defined]
    return crit(graph.groups[0], graph.tensors).tolist()  # type: ignore[operator]


@pytest.mark.parametrize("vectorize", [True, False])
def test_chunked_loss_contribution_matches_the_hand_computation(vectorize: bool) -> None:
    net = tiny()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    crit = LossContribution(data=DATA, loss_fn=hinge, chunks=3, vectorize=vectorize)
    assert scores(crit, net) == pytest.approx([0.0, 1.0, 0.5])
    assert crit.forwards_ == 6 and crit.rounds_ == 2
    assert crit.base_sum_ == 0.0  # the state of the unzeroed model is restored
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_one_shot_loss_contribution_sees_nothing_behind_the_margin() -> None:
    assert scores(LossContribution(data=DATA, loss_fn=hinge, chunks=1), tiny()) == [0.0] * 3


def test_default_chunks_cut_keeps_the_unit_the_hand_computation_keeps() -> None:
    # default chunks=32 -> one unit a round on 3 units: the same as chunks=3 above
    res = prunekit.prune(tiny(), DATA[0], ratio=0.67,
                         importance=LossContribution(data=DATA, loss_fn=hinge))  # fmt: skip
    assert res.plan.removed == {"0.weight:0": [0, 2]}


def test_rescored_wraps_any_criterion() -> None:
    # Taylor |sum w g| on the hinge: flat at y = 2.5 and at y = 1.5 (relu'(0) = 0), so
    # units 0 then 1 go with score 0; with only unit 2 left y = 0.5, dL/dy = -1:
    # fc1 row 2: w 0.5, g -1; fc2 column 2: w 1, g -h2 = -0.5 -> |-0.5 - 0.5| = 1
    crit = Rescored(Taylor(data=DATA, loss_fn=hinge), chunks=3)
    assert scores(crit, tiny()) == [0.0, 0.0, 1.0] and crit.cost_["rounds"] == 2
    assert scores(Taylor(data=DATA, loss_fn=hinge), tiny()) == [0.0, 0.0, 0.0]
    with pytest.raises(ConfigError, match="chunks"):
        LossContribution(data=DATA, loss_fn=hinge, chunks=0)
