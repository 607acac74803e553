"""Ensembles by hand: mean of logits, weighted vote, pruning each member, the MACs table,
greedy (Caruana) selection under a MACs budget."""

from __future__ import annotations

import pytest
import torch

import prunekit
from prunekit.cost import count_macs
from prunekit.deploy import (
    Ensemble,
    evaluate_ensemble,
    greedy_selection,
    prune_ensemble,
    select_members,
)
from prunekit.errors import SearchError
from tests.deploy.nets import Lookup, first_three, ids, mlp

A = [[3.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
B = [[0.0, 2.0, 0.0], [0.0, 0.0, 5.0]]
C = [[0.0, 0.0, 1.0], [0.0, 4.0, 0.0]]


def test_mean_of_logits_by_hand() -> None:
    out = Ensemble([Lookup(A), Lookup(B), Lookup(C)])(ids(2))
    assert torch.allclose(out, torch.tensor([[1.0, 2 / 3, 1 / 3], [0.0, 5 / 3, 5 / 3]]))
    weighted = Ensemble([Lookup(A), Lookup(B)], weights=[3, 1])(ids(2))
    assert torch.allclose(weighted, torch.tensor([[2.25, 0.5, 0.0], [0.0, 0.75, 1.25]]))


def test_vote_by_hand() -> None:
    ens = Ensemble([Lookup(A), Lookup(B), Lookup(C)], combine="vote")
    out = ens(ids(2))
    # row 0: votes 0, 1, 2 -> a three-way tie (argmax takes class 0); row 1: 1, 2, 1
    assert torch.allclose(out, torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.0, 2 / 3, 1 / 3]]))
    assert out.argmax(1).tolist() == [0, 1]
    heavy_b = Ensemble([Lookup(A), Lookup(B), Lookup(C)], combine="vote", weights=[1, 3, 1])
    assert heavy_b(ids(2)).argmax(1).tolist() == [1, 2]


def test_prune_every_member_with_its_own_plan() -> None:
    members = [mlp(s) for s in range(3)]
    before = [m[0].weight.clone() for m in members]
    x = torch.randn(4, 4)
    out = prune_ensemble(members, x, ratio=0.5, member_options=[
        {"importance": "l1"}, {"importance": "l2"}, {"importance": "random", "ratio": 0.75}])  # fmt: skip
    assert [r.model[0].out_features for r in out.results] == [8, 8, 4]
    assert all(len(r.plan.steps) == 1 for r in out.results)
    assert all(torch.equal(m[0].weight, w) for m, w in zip(members, before))  # untouched
    assert count_macs(out.ensemble, x[:1]) == 2 * (32 + 24) + (16 + 12)


def test_ensemble_table_macs_by_hand() -> None:
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    big = mlp(1)
    ens = Ensemble([first_three(), mlp(0)])
    rep = evaluate_ensemble(ens, [(x[:6], y[:6]), (x[6:], y[6:])], others={"single": big})
    assert [r.name for r in rep.rows] == ["member 0", "member 1", "ensemble", "single"]
    assert [r.macs_per_input for r in rep.rows] == [12, 112, 124, 112]
    with torch.no_grad():
        expected = float((ens(x).argmax(1) == y).double().mean())
    assert rep.row("ensemble").accuracy == pytest.approx(expected)
    assert rep.n == 10 and "| single |" in rep.table()


# Validation set of 4 rows (all class 0); each candidate's logits and MACs per row:
TARGETS = torch.zeros(4, dtype=torch.long)
GOOD = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # 3/4, costs 10
LEFT = torch.tensor([[0.0, 0.5], [1.0, 0.0], [1.0, 0.0], [3.0, 0.0]])  # 3/4, costs 4
CHEAP = torch.tensor([[3.0, 0.0], [0.0, 2.0], [0.0, 2.0], [0.0, 2.0]])  # 1/4, costs 1
COSTS = [10.0, 4.0, 1.0]


def test_caruana_selection_by_hand() -> None:
    sel = greedy_selection([GOOD, LEFT, CHEAP], TARGETS, COSTS, macs_budget=20)
    # step 1: GOOD and LEFT tie at 3/4, LEFT is cheaper; step 2: LEFT + GOOD gets 4/4
    # (LEFT + CHEAP gets 2/4, LEFT twice 3/4); step 3: nothing beats 4/4
    assert sel.picks == [1, 0] and sel.history == [0.75, 1.0]
    assert sel.macs_per_input == 14.0 and sel.weights == [1, 1]
    tight = greedy_selection([GOOD, LEFT, CHEAP], TARGETS, COSTS, macs_budget=6)
    # GOOD does not fit; LEFT + CHEAP (2/4) and LEFT again (3/4) do not improve: stop
    assert tight.picks == [1] and tight.macs_per_input == 4.0


def test_caruana_with_replacement_reweights() -> None:
    # logits [s, 0]: class 0 (the target) wins where s > 0
    def cand(*s: float) -> torch.Tensor:
        return torch.tensor([[v, 0.0] for v in s])

    a = cand(1, 1, -1, -1)  # 2/4
    b = cand(-1.5, -0.5, 3, 3)  # 2/4, dearer than a
    c = cand(-1, -1, -1, -1)  # 0/4
    with_rep = greedy_selection([a, b, c], TARGETS, [1, 2, 1], macs_budget=10)
    # a (tie with b, cheaper); a + b = (-.25, .25, 1, 1) -> 3/4; 2a + b -> 4/4
    assert with_rep.picks == [0, 1, 0] and with_rep.history == [0.5, 0.75, 1.0]
    assert with_rep.members == [0, 1] and with_rep.weights == [2, 1]
    assert with_rep.macs_per_input == 3.0  # a repeat costs nothing: it runs once
    no_rep = greedy_selection([a, b, c], TARGETS, [1, 2, 1], macs_budget=10, replacement=False)
    assert no_rep.picks == [0, 1] and no_rep.history == [0.5, 0.75]  # adding c hurts


def test_select_members_builds_the_ensemble() -> None:
    x = torch.randn(12, 4)
    truth = mlp(7)
    with torch.no_grad():
        y = truth(x).argmax(1)
    cands = [first_three(), prunekit.prune(truth, x[:2], ratio=0.5).model, truth]
    sel = select_members(cands, [(x, y)], macs_budget=200)
    assert sel.ensemble is not None and sel.history[-1] == 1.0  # the truth itself fits
    assert sel.macs_per_input <= 200
    with pytest.raises(SearchError, match="below the cheapest candidate"):
        select_members(cands, [(x, y)], macs_budget=5)
